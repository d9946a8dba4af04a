// The shell: who is signed in, the live connection, the router (hash
// routes, so the server only ever serves `/`), the tab bar and badges.

import { api, get, onUnauthorized, post } from './api.js';
import { Live } from './live.js';
import { h, mount, toast } from './ui.js';
import * as auth from './views/auth.js';
import * as feed from './views/feed.js';
import * as listing from './views/listing.js';
import * as edit from './views/edit.js';
import * as chats from './views/chats.js';
import * as room from './views/room.js';
import * as open from './views/open.js';
import * as me from './views/me.js';
import * as places from './views/places.js';
import * as notifications from './views/notifications.js';
import * as shop from './views/shop.js';
import * as admin from './views/admin.js';

export const app = {
  me: null,
  live: null,
  main: null,
  /** Navigate (hash route). */
  go(path) { location.hash = `#${path}`; },
  /** Cleanup of the current view (listeners it registered). */
  cleanup: [],
  /** The current view's life: `alive` turns false when the route changes,
   *  so a view that was still loading when the user moved on stops there. */
  view: { alive: true },
  /** Register a live-event handler that ends with the view. */
  on(type, fn) {
    if (!app.live) return;
    const handler = (e) => fn(e.detail);
    app.live.addEventListener(type, handler);
    app.cleanup.push(() => app.live && app.live.removeEventListener(type, handler));
  },
  async signedIn(me) {
    app.me = me;
    if (app.live) app.live.stop();
    app.live = new Live(me.id);
    app.live.fetchRooms = () => get('/api/me/rooms');
    wireBadges(app.live);
    app.live.start();
    document.querySelector('.tabs').hidden = false;
    document.getElementById('bell').hidden = false;
    app.showVerified();
    refreshBadges();
  },
  /** The banner that asks for email verification, while it is needed. */
  showVerified() {
    document.getElementById('verify-banner').hidden = !app.me || app.me.email_verified !== false;
  },
  signedOut() {
    if (app.live) app.live.stop();
    app.live = null;
    app.me = null;
    document.querySelector('.tabs').hidden = true;
    document.getElementById('bell').hidden = true;
    app.showVerified();
  },
};

const routes = [
  [/^\/login$/, auth.login, { public: true }],
  [/^\/signup$/, auth.signup, { public: true }],
  [/^\/verify-email$/, auth.verifyEmail, { public: true }],
  [/^\/$/, feed.view, { tab: 'home' }],
  [/^\/listings\/(\d+)(?:\/review)?$/, listing.view, { tab: 'home' }],
  [/^\/listings\/(\d+)\/edit$/, edit.view, { tab: 'home' }],
  [/^\/new$/, edit.view, { tab: 'new' }],
  [/^\/chats$/, chats.view, { tab: 'chats' }],
  [/^\/chats\/(\d+)$/, room.view, { tab: 'chats' }],
  [/^\/open$/, open.view, { tab: 'open' }],
  [/^\/open\/new$/, open.create, { tab: 'open' }],
  [/^\/open\/(\d+)$/, open.detail, { tab: 'open' }],
  [/^\/me$/, me.view, { tab: 'me' }],
  [/^\/neighbourhoods$/, places.view, { tab: 'me' }],
  [/^\/user\/(\d+)$/, me.profile, { tab: 'home' }],
  [/^\/notifications$/, notifications.view, {}],
  [/^\/shop$/, shop.view, { tab: 'shop' }],
  [/^\/products\/(\d+)$/, shop.product, { tab: 'shop' }],
  [/^\/cart$/, shop.cart, { tab: 'shop' }],
  [/^\/orders$/, shop.orders, { tab: 'me' }],
  [/^\/orders\/([\w-]+)$/, shop.order, { tab: 'me' }],
  [/^\/wishlist$/, shop.wishlist, { tab: 'shop' }],
  [/^\/admin$/, admin.view, { tab: 'me' }],
];

async function route() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  const params = new URLSearchParams(query || '');
  for (const fn of app.cleanup.splice(0)) fn();
  const ctx = { alive: true };
  app.view = ctx;
  app.cleanup.push(() => { ctx.alive = false; });
  const match = routes.find(([re]) => re.test(path));
  const main = app.main;
  if (!match) {
    mount(main, h('section.empty', h('h1', '페이지를 찾을 수 없어요'), h('a', { href: '#/' }, '홈으로')));
    document.body.dataset.ready = 'true';
    return;
  }
  const [re, view, opts] = match;
  if (!opts.public && !app.me) {
    app.go(`/login?next=${encodeURIComponent(raw)}`);
    return;
  }
  for (const a of document.querySelectorAll('.tabs a')) {
    if (a.dataset.tab === opts.tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const args = path.match(re).slice(1).filter((a) => a !== undefined)
    .map((a) => (/^\d+$/.test(a) ? Number(a) : a));
  document.body.dataset.route = path.split('/')[1] || 'home';
  try {
    await view(main, ...args, params);
  } catch (e) {
    mount(main, h('section.empty', h('h1', '문제가 생겼어요'), h('p', e.message || String(e)),
      h('a', { href: '#/' }, '홈으로')));
  }
  if (!ctx.alive) return; // another route took over meanwhile
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
  document.body.dataset.ready = 'true';
}

function wireBadges(live) {
  const net = document.getElementById('net');
  live.addEventListener('status', (e) => {
    net.textContent = e.detail.online ? '' : '연결 끊김 · 다시 연결하는 중…';
    net.classList.toggle('offline', !e.detail.online);
    document.body.dataset.live = e.detail.online ? 'online' : 'offline';
  });
  live.addEventListener('badge', (e) => setCount('chat-count', e.detail.total));
  live.addEventListener('notification_badge', (e) => setBell(e.detail.unread));
  live.addEventListener('notification', (e) => toast(e.detail.notification.title));
  live.addEventListener('ended', () => {
    toast('로그인이 끝났어요. 다시 로그인해 주세요.');
    app.signedOut();
    app.go('/login');
  });
}

async function refreshBadges() {
  try {
    const rooms = await get('/api/me/rooms');
    setCount('chat-count', rooms.total_unread);
    if (app.live) app.live.seed(rooms);
    const n = await get('/api/me/notifications/unread_count');
    setBell(n.unread);
  } catch { /* the next live frame corrects it */ }
}

export function setCount(id, n) {
  const el = document.getElementById(id);
  if (!el) return;
  el.textContent = n > 99 ? '99+' : String(n);
  el.hidden = !n;
  el.setAttribute('aria-label', `읽지 않은 ${n}개`);
}

function setBell(n) {
  const bell = document.getElementById('bell');
  const count = bell.querySelector('.count');
  count.textContent = n > 99 ? '99+' : String(n);
  count.hidden = !n;
  bell.setAttribute('aria-label', n ? `알림 ${n}개 안 읽음` : '알림');
}

async function boot() {
  app.main = document.getElementById('main');
  document.getElementById('verify-resend').addEventListener('click', async (e) => {
    e.target.disabled = true;
    try {
      await post('/api/auth/verify-email/resend', {});
      toast('인증 메일을 다시 보냈어요. 메일함을 확인해 주세요.');
    } catch (err) {
      toast(err.message || '지금은 보낼 수 없어요. 잠시 후 다시 시도해 주세요.');
    } finally {
      e.target.disabled = false;
    }
  });
  onUnauthorized(() => {
    if (app.me) {
      app.signedOut();
      app.go('/login');
    }
  });
  try {
    const me = await api('GET', '/api/me', undefined, { quiet: true });
    await app.signedIn(me);
  } catch {
    app.signedOut();
  }
  if (location.pathname === '/pay/return') {
    // Back from a payment provider's page: settle it, then show the order.
    const next = app.me ? await shop.payReturn(new URLSearchParams(location.search)) : '/login';
    history.replaceState(null, '', `/#${next}`);
  }
  window.addEventListener('hashchange', route);
  window.addEventListener('online', () => app.live && app.live.kick());
  await route();
}

boot();
