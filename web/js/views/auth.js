// Sign up, log in (own account, or Kakao/Google when configured).

import { app } from '../app.js';
import { get, post } from '../api.js';
import { busy, field, h, mount } from '../ui.js';

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

export async function login(main, params) {
  if (app.me) { app.go('/'); return; }
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
        await post('/api/auth/login', { email: body.email, password: body.password });
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
