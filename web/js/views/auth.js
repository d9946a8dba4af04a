// Sign up, log in (own account, or Kakao/Google when configured).

import { app } from '../app.js';
import { api, get, post } from '../api.js';
import { busy, field, h, mount, toast } from '../ui.js';

const PROVIDER_LABEL = { kakao: '카카오로 시작하기', google: 'Google로 시작하기' };

async function providerButtons() {
  let list = [];
  try { list = (await get('/api/auth/providers', { quiet: true })).providers || []; } catch { list = []; }
  if (!list.length) return null;
  return h('div.providers',
    list.map((p) => h(`a.button.provider.${p.provider || p}`, {
      href: `/api/auth/${p.provider || p}/start?return_to=${encodeURIComponent('/')}`,
    }, PROVIDER_LABEL[p.provider || p] || p.provider || p)));
}

const PROVIDER_NAME = { kakao: '카카오', google: 'Google' };
const OAUTH_ERRORS = {
  oauth_denied: () => '로그인을 취소했어요.',
  oauth_state_invalid: () => '로그인 요청이 만료되었거나 다른 브라우저에서 시작되었어요. 다시 시도해 주세요.',
  oauth_code_invalid: (p) => `${p} 로그인을 확인하지 못했어요. 다시 시도해 주세요.`,
  oauth_token_invalid: (p) => `${p} 로그인을 확인하지 못했어요. 다시 시도해 주세요.`,
  email_conflict: () => '이 이메일을 쓰는 장터 계정이 이미 있어요. 그 계정으로 로그인한 뒤 나의 장터에서 연결해 주세요.',
  identity_taken: (p) => `이 ${p} 계정은 이미 다른 장터 계정에 연결되어 있어요.`,
  already_linked: (p) => `이미 ${p} 계정이 연결되어 있어요.`,
  unavailable: (p) => `${p} 로그인 서버가 응답하지 않아요. 잠시 후 다시 시도해 주세요.`,
  provider_disabled: (p) => `${p} 로그인은 지금 쓸 수 없어요.`,
};

/** What the OAuth callback sent back (`?oauth_error=code&provider=p`), in words. */
export function oauthError(params) {
  const code = params.get('oauth_error');
  if (!code) return null;
  const p = PROVIDER_NAME[params.get('provider')] || '소셜';
  return (OAUTH_ERRORS[code] || (() => `${p} 로그인에 실패했어요 (${code}).`))(p);
}

export async function login(main, params) {
  const failed = oauthError(params);
  if (app.me) {
    if (failed) toast(failed);
    app.go('/');
    return;
  }
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const form = h('form.card.auth', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(form, async () => {
        await post('/api/auth/login', { email: email.value.trim(), password: password.value });
        await app.signedIn(await get('/api/me'));
        app.go(params.get('next') || '/');
      });
    },
  },
  h('h1', '로그인'),
  failed ? h('p.form-error.oauth-error', { role: 'alert' }, failed) : null,
  field('이메일', email),
  field('비밀번호', password),
  h('p.form-error', { role: 'alert' }),
  h('button.primary', { type: 'submit' }, '로그인'),
  h('p', '처음이신가요? ', h('a', { href: '#/signup' }, '회원가입')));
  mount(main, h('section.narrow', h('p.lead', '우리 동네 중고 직거래, 장터'), form, await providerButtons()));
  email.focus();
}

export async function signup(main) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true });
  const nickname = h('input', { name: 'nickname', autocomplete: 'nickname', required: true, minLength: 2, maxLength: 20 });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minLength: 8 });
  const form = h('form.card.auth', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(form, async () => {
        const body = { email: email.value.trim(), password: password.value, nickname: nickname.value.trim() };
        await post('/api/auth/signup', body);
        try {
          await post('/api/auth/login', { email: body.email, password: body.password });
        } catch (e) {
          // Sign-up answers alike for a registered address (it does not
          // tell who has an account); the login then fails.
          if (e.code === 'invalid_credentials') {
            throw new Error('이미 가입된 이메일일 수 있어요. 로그인하거나 메일함을 확인해 주세요.');
          }
          throw e;
        }
        await app.signedIn(await get('/api/me'));
        app.go('/');
      });
    },
  },
  h('h1', '회원가입'),
  field('이메일', email),
  field('닉네임', nickname, '2~20자'),
  field('비밀번호', password, '8자 이상'),
  h('p.form-error', { role: 'alert' }),
  h('button.primary', { type: 'submit' }, '가입하기'),
  h('p', '이미 계정이 있나요? ', h('a', { href: '#/login' }, '로그인')));
  mount(main, h('section.narrow', form, await providerButtons()));
  email.focus();
}

/** The emailed verification link (`#/verify-email?token=...`): spend the
 *  token, say how it went, and drop the banner when it worked. */
export async function verifyEmail(main, params) {
  const token = params.get('token') || '';
  let ok = false;
  try {
    await api('POST', '/api/auth/verify-email', { token }, { quiet: true });
    ok = true;
  } catch { ok = false; }
  if (ok && app.me) {
    try { app.me = await get('/api/me'); } catch { /* the banner stays until the next load */ }
  }
  app.showVerified();
  mount(main, h('section.empty.verify-result', { 'data-ok': String(ok) },
    h('h1', ok ? '이메일 인증을 마쳤어요' : '인증 링크가 유효하지 않아요'),
    h('p', ok ? '이제 물건을 팔고 결제할 수 있어요.'
      : '이미 사용했거나 기간이 지난 링크예요. 로그인한 뒤 인증 메일을 다시 받아 주세요.'),
    h('a.button', { href: '#/' }, '홈으로')));
}
