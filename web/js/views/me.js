// My page (profile, my listings by status, favourites, log out) and other
// users' profiles (manner score, review tags, their listings).

import { app } from '../app.js';
import { get, post, qs } from '../api.js';
import { REVIEW_TAGS, avatar, h, manner, mount } from '../ui.js';
import { infinite, listingCard } from './feed.js';

function profileHead(p) {
  const tags = Object.entries(p.review_tags || {}).sort((a, b) => b[1] - a[1]);
  return h('div.profile',
    avatar(p.nickname),
    h('div',
      h('h1', p.nickname),
      h('p.manner-line', h('span', '매너온도 '), h('strong.manner', manner(p.manner_score)),
        h('span.meta', ` · 후기 좋아요 ${p.reviews_good} / 별로예요 ${p.reviews_bad}`))),
    tags.length ? h('ul.review-tags', { 'aria-label': '받은 매너 평가' },
      tags.map(([k, n]) => h('li', `${REVIEW_TAGS[k] || k} ${n}`))) : null);
}

function listingsOf(seller, status) {
  const list = h('ul.items');
  const sentinel = infinite(list, async (cursor) => {
    const page = await get(`/api/listings${qs({ seller, status, cursor, limit: 20 })}`);
    return { items: page.items.map(listingCard), next_cursor: page.next_cursor };
  });
  return [list, sentinel];
}

export async function view(main, params) {
  const ctx = app.view;
  const p = await get(`/api/users/${app.me.id}`);
  if (!ctx.alive) return;
  const status = params.get('status') || 'selling';
  const tab = (s, label) => h('a', { href: `#/me?status=${s}`, 'aria-current': s === status ? 'page' : null }, label);
  mount(main, h('section.me',
    profileHead(p),
    h('p.meta', app.me.email),
    h('div.row',
      h('a.button', { href: '#/neighbourhoods' }, '내 동네 설정'),
      h('a.button', { href: '#/notifications' }, '알림'),
      h('a.button', { href: '#/orders' }, '주문 내역'),
      h('a.button', { href: '#/wishlist' }, '찜한 상품'),
      h('a.button', { href: '#/new' }, '내 물건 팔기'),
      app.me.role === 'admin' ? h('a.button', { href: '#/admin' }, '관리자') : null,
      h('button', {
        type: 'button',
        onclick: async () => {
          try { await post('/api/auth/logout'); } finally { app.signedOut(); app.go('/login'); }
        },
      }, '로그아웃')),
    h('h2', '나의 판매 내역'),
    h('nav.subtabs', { 'aria-label': '판매 상태' }, tab('selling', '판매중'), tab('reserved', '예약중'), tab('sold', '거래완료')),
    ...listingsOf(app.me.id, status)));
}

export async function profile(main, id) {
  const ctx = app.view;
  const p = await get(`/api/users/${id}`);
  if (!ctx.alive) return;
  mount(main, h('section.me', profileHead(p), h('h2', `${p.nickname}님의 판매 물건`), ...listingsOf(id, '')));
}
