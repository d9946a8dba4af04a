// The REST client: same-origin fetch with the session cookie; errors come
// back as the server's JSON envelope ({code, message, details}).

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `요청이 실패했어요 (${status})`);
    this.status = status;
    this.code = (body && body.code) || 'http_error';
    this.details = body && body.details;
  }
}

const listeners = new Set();
/** Called with no arguments when any request answers 401 (session gone). */
export const onUnauthorized = (fn) => listeners.add(fn);

export async function api(method, path, body, opts = {}) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: 'offline', message: '네트워크에 연결할 수 없어요' });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!res.ok) {
    if (res.status === 401 && !opts.quiet) listeners.forEach((fn) => fn());
    throw new ApiError(res.status, json);
  }
  return json;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body) => api('POST', path, body ?? {});
export const put = (path, body) => api('PUT', path, body ?? {});
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

/** `?a=1&b=2` from an object, leaving out empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}
