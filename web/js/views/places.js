// 내 동네 설정: verify a neighbourhood where the device is (the browser's
// geolocation), switch the active one, set its range, remove one; and a
// search by name to look regions up (browsing only: verifying needs a
// position).

import { app } from '../app.js';
import { del, get, post, put, qs } from '../api.js';
import { busy, h, mount, toast } from '../ui.js';

const RANGES = [
  ['dong', '내 동네만'],
  ['near', '가까운 동네 (3km)'],
  ['normal', '조금 먼 동네 (6km)'],
  ['far', '먼 동네 (10km)'],
];

const MESSAGES = {
  outside_service_area: '이 위치에서는 동네를 찾을 수 없어요 (국내 읍·면·동만 인증할 수 있어요).',
  neighbourhood_limit: '동네는 두 곳까지 설정할 수 있어요. 하나를 지운 뒤 다시 인증해 주세요.',
};

/** The device's position, or a clear error. */
function position() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new Error('이 브라우저는 위치 정보를 지원하지 않아요.'));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lng: p.coords.longitude }),
      () => reject(new Error('위치 정보를 가져올 수 없어요. 브라우저의 위치 권한을 확인해 주세요.')),
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 0 },
    );
  });
}

const until = (ms) => new Date(ms).toLocaleDateString('ko-KR');

function item(n, refresh) {
  const range = h('select', {
    'aria-label': `${n.region.name} 범위`,
    onchange: async () => {
      try {
        await put(`/api/me/neighbourhoods/${n.region.code}`, { range: range.value });
        toast('범위를 바꿨어요');
        refresh();
      } catch (e) { toast(e.message); }
    },
  }, RANGES.map(([v, label]) => h('option', { value: v, selected: v === n.range }, label)));
  return h('li.neighbourhood', { dataset: { code: n.region.code, active: String(n.active) } },
    h('div',
      h('strong', n.region.name),
      n.active ? h('span.badge', '내 동네') : null,
      h('p.meta', `${n.region.full_name} · ${until(n.verified_until)}까지 인증`)),
    range,
    n.active ? null : h('button', {
      type: 'button',
      onclick: async () => {
        try {
          await put(`/api/me/neighbourhoods/${n.region.code}`, { active: true });
          refresh();
        } catch (e) { toast(e.message); }
      },
    }, '이 동네로 보기'),
    h('button', {
      type: 'button',
      onclick: async () => {
        try { await del(`/api/me/neighbourhoods/${n.region.code}`); refresh(); } catch (e) { toast(e.message); }
      },
    }, '삭제'));
}

export async function view(main) {
  const ctx = app.view;
  const list = h('ul.neighbourhoods');
  const refresh = async () => {
    const mine = await get('/api/me/neighbourhoods');
    if (!ctx.alive) return;
    mount(list, mine.length ? mine.map((n) => item(n, refresh))
      : h('li.empty', '아직 설정한 동네가 없어요. 지금 있는 곳에서 동네를 인증해 보세요.'));
  };
  const verify = h('form.card.verify', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(verify, async () => {
        const where = await position();
        try {
          const n = await post('/api/me/neighbourhoods', where);
          toast(`${n.region.name} 동네 인증을 마쳤어요`);
        } catch (err) {
          throw new Error(MESSAGES[err.code] || err.message);
        }
        await refresh();
      });
    },
  },
  h('p', '지금 있는 곳의 동네를 인증해요. 동네는 두 곳까지, 인증은 30일 동안 유지돼요.'),
  h('p.form-error', { role: 'alert' }),
  h('button.primary', { type: 'submit' }, '현재 위치로 동네 인증'));

  const query = h('input', { type: 'search', name: 'query', maxLength: 40, placeholder: '동네 이름 (예: 역삼동)', 'aria-label': '동네 이름' });
  const found = h('ul.regions');
  const search = h('form.search', {
    role: 'search',
    onsubmit: async (e) => {
      e.preventDefault();
      const words = query.value.trim();
      if (!words) return;
      try {
        const r = await get(`/api/regions${qs({ query: words, limit: 20 })}`);
        mount(found, r.items.length ? r.items.map((x) => h('li.region', { dataset: { code: x.code } }, x.full_name))
          : h('li.empty', '찾는 동네가 없어요'));
      } catch (err) { toast(err.message); }
    },
  }, query, h('button', { type: 'submit' }, '찾기'));

  mount(main, h('section.narrow.places',
    h('h1', '내 동네 설정'),
    list,
    verify,
    h('h2', '동네 찾아보기'),
    h('p.meta', '이름으로 동네를 찾아볼 수 있어요. 인증은 그 동네에 있을 때 현재 위치로 해 주세요.'),
    search, found));
  await refresh();
}
