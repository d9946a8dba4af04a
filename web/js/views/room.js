// One chat room: history (older pages as you scroll up), live messages,
// own messages pending -> sent, read receipts, typing, system cards, and
// the seller's reserve / sold buttons in a listing chat.

import { app } from '../app.js';
import { del, get, post } from '../api.js';
import { STATUS, avatar, clock, h, mount, toast, won } from '../ui.js';
import { roomTitle } from './chats.js';

const names = new Map();
/** A user's nickname (cached per page load). */
export function nickname(id) {
  if (!names.has(id)) {
    names.set(id, get(`/api/users/${id}`).then((p) => (p.withdrawn ? '(탈퇴한 사용자)' : p.nickname), () => `#${id}`));
  }
  return names.get(id);
}

export async function view(main, id) {
  const ctx = app.view;
  const live = app.live;
  const me = app.me.id;
  // Live frames that arrive while the history loads wait here.
  let loaded = false;
  const early = [];
  const later = (fn) => (f) => { if (f.room !== id) return; if (loaded) fn(f); else early.push(() => fn(f)); };

  const [room, mine] = await Promise.all([get(`/api/rooms/${id}`), get('/api/me/rooms')]);
  const summary = mine.items.find((r) => r.id === id);
  if (!summary) throw new Error('이 채팅방의 멤버가 아니에요');
  const direct = room.kind === 'direct';
  const peer = summary.peer;
  let peerRead = 0;
  if (direct) {
    const members = await get(`/api/rooms/${id}/members`);
    const other = members.find((m) => m.user_id !== me);
    peerRead = other ? other.last_read_seq : 0;
  }

  const count = h('span.member-count', { 'aria-label': '참여 인원' });
  const list = h('ol.messages', { 'aria-label': '메시지', 'aria-live': 'polite', tabindex: 0 });
  const typing = h('p.typing', { 'aria-live': 'polite' });
  const input = h('textarea', { name: 'body', rows: 1, maxLength: 4000, placeholder: '메시지 보내기', 'aria-label': '메시지' });
  const rendered = new Map(); // seq -> li
  const pendingEls = new Map(); // client_msg_id -> li
  let minSeq = Infinity;
  let maxSeq = 0;

  const receiptText = (seq) => (seq <= peerRead ? '읽음' : '1');
  function bubble(m) {
    const own = m.sender === me;
    if (m.kind === 'system') {
      return h(`li.msg.system${m.payload && m.payload.event ? `.${m.payload.event}` : ''}`,
        { dataset: { seq: m.seq } }, h('span.card', m.body));
    }
    const who = h('span.who');
    if (!own && !direct) nickname(m.sender).then((n) => { who.textContent = n; });
    return h(`li.msg${own ? '.mine' : '.theirs'}`, { dataset: { seq: m.seq, cmid: m.client_msg_id || '' } },
      own || direct ? null : who,
      h('span.body', m.deleted ? '삭제된 메시지예요' : m.body),
      h('span.side',
        own && direct ? h('span.receipt', receiptText(m.seq)) : null,
        own ? h('span.state', '전송됨') : null,
        h('time', { datetime: new Date(m.ts).toISOString() }, clock(m.ts))));
  }
  function pendingBubble(f) {
    return h('li.msg.mine.pending', { dataset: { cmid: f.client_msg_id } },
      h('span.body', f.body), h('span.side', h('span.state', '전송 중…')));
  }
  const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  const toBottom = () => { list.scrollTop = list.scrollHeight; };

  /** Put `el` (message `seq`) in seq order: before the next higher one
   *  shown, else before the pending ones, else last. */
  function place(el, seq) {
    const after = [...rendered.keys()].filter((x) => x > seq).sort((a, b) => a - b)[0];
    const before = after ? rendered.get(after) : list.querySelector('.pending');
    if (before !== el) list.insertBefore(el, before || null);
  }

  function add(m) {
    const pendingEl = m.client_msg_id ? pendingEls.get(m.client_msg_id) : null;
    if (rendered.has(m.seq) && !pendingEl) return;
    if (loaded && m.seq > maxSeq + 1 && maxSeq > 0) {
      // A hole (should not happen: resume fills it); fetch what is missing.
      fill();
    }
    const stick = atBottom() || m.sender === me;
    const fresh = bubble(m);
    if (pendingEl) {
      // Our own message, acknowledged earlier or now: the full bubble
      // takes the pending one's place.
      pendingEl.replaceWith(fresh);
      pendingEls.delete(m.client_msg_id);
    }
    rendered.set(m.seq, fresh);
    place(fresh, m.seq);
    minSeq = Math.min(minSeq, m.seq);
    maxSeq = Math.max(maxSeq, m.seq);
    if (stick) toBottom();
  }

  let filling = false;
  async function fill() {
    if (filling) return;
    filling = true;
    try {
      const page = await get(`/api/rooms/${id}/messages?after=${maxSeq}&limit=200`);
      page.forEach(add);
    } finally { filling = false; }
  }

  let readTimer;
  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      if (ctx.alive && document.visibilityState === 'visible' && maxSeq > 0) live.read(id, maxSeq);
    }, 100);
  }

  // The listing this chat is about, redrawn when a system message says it
  // changed (reserved, sold, price).
  // The user may have moved on while this loaded: register nothing then.
  if (!ctx.alive) return;
  const bar = h('div.listing-bar-slot');
  const drawBar = async () => {
    if (summary.listing) mount(bar, await listingBar(summary.listing, peer, drawBar));
  };
  app.on('message', later((m) => {
    add(m);
    live.follow(id, m.seq);
    markRead();
    if (m.kind === 'system' && m.payload && m.payload.listing) drawBar();
    if (loaded && m.kind === 'system' && m.payload && !direct) {
      const delta = { joined: 1, left: -1, kicked: -1, banned: -1 }[m.payload.event] || 0;
      if (delta) {
        room.member_count += delta;
        count.textContent = ` ${room.member_count}`;
      }
    }
  }));
  app.on('ack', later((f) => {
    const el = pendingEls.get(f.client_msg_id);
    if (!el) return;
    el.classList.remove('pending');
    el.dataset.seq = f.seq;
    el.querySelector('.state').textContent = '전송됨';
    // Its seq is known now: older messages still on their way (a replay
    // after a reconnect) go above it, not below.
    rendered.set(f.seq, el);
    place(el, f.seq);
    maxSeq = Math.max(maxSeq, f.seq);
  }));
  app.on('send_error', later((f) => {
    const el = pendingEls.get(f.client_msg_id);
    if (!el) return;
    el.classList.add('failed');
    el.querySelector('.state').textContent = `보내지 못했어요: ${f.message}`;
  }));
  app.on('receipt', later((f) => {
    if (f.user === me || f.seq <= peerRead) return;
    peerRead = f.seq;
    for (const [seq, el] of rendered) {
      const r = el.querySelector('.receipt');
      if (r) r.textContent = receiptText(seq);
    }
  }));
  let typingTimer;
  app.on('typing', later(async (f) => {
    if (f.user === me) return;
    typing.textContent = `${direct ? (peer ? peer.nickname : '상대방') : await nickname(f.user)}님이 입력 중…`;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { typing.textContent = ''; }, 4000);
  }));
  app.on('message_updated', later((f) => {
    const el = rendered.get(f.seq);
    if (el) el.querySelector('.body').textContent = f.deleted ? '삭제된 메시지예요' : f.body;
  }));
  app.on('removed', later(() => { toast('채팅방에서 나가게 되었어요'); app.go('/chats'); }));
  app.on('status', (s) => { if (s.online && loaded) markRead(); });
  const onVisible = () => markRead();
  document.addEventListener('visibilitychange', onVisible);
  app.cleanup.push(() => { document.removeEventListener('visibilitychange', onVisible); clearTimeout(typingTimer); clearTimeout(readTimer); });

  let lastTyping = 0;
  input.addEventListener('input', () => {
    if (Date.now() - lastTyping > 3000 && input.value.trim()) {
      lastTyping = Date.now();
      live.typing(id);
    }
  });
  const send = () => {
    const body = input.value.trim();
    if (!body) return;
    const cmid = live.send(id, body);
    const el = pendingBubble({ client_msg_id: cmid, body });
    pendingEls.set(cmid, el);
    list.append(el);
    input.value = '';
    toBottom();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  const composer = h('form.composer', { onsubmit: (e) => { e.preventDefault(); send(); } },
    input, h('button.primary', { type: 'submit', 'aria-label': '보내기' }, '전송'));

  // Older pages as the top scrolls into view.
  let older = false;
  list.addEventListener('scroll', async () => {
    if (older || list.scrollTop > 80 || minSeq <= 1 || minSeq === Infinity) return;
    older = true;
    const height = list.scrollHeight;
    try {
      const page = await get(`/api/rooms/${id}/messages?before=${minSeq}&limit=50`);
      page.forEach(add);
      list.scrollTop += list.scrollHeight - height;
    } finally { older = false; }
  });

  const title = roomTitle(summary);
  count.textContent = ` ${room.member_count}`;
  mount(main, h('section.room', { dataset: { room: id } },
    h('header.room-head',
      h('a.back', { href: direct ? '#/chats' : '#/open', 'aria-label': '뒤로' }, '‹'),
      avatar(title),
      h('h1', title, peer ? null : count),
      direct ? null : h('a.button.small', { href: `#/open/${id}` }, '정보')),
    bar,
    list, typing, composer));

  await drawBar();
  const history = await get(`/api/rooms/${id}/messages?limit=50`);
  if (!ctx.alive) return;
  history.forEach(add);
  for (const f of live.pending(id)) {
    const el = pendingBubble(f);
    pendingEls.set(f.client_msg_id, el);
    list.append(el);
  }
  loaded = true;
  early.splice(0).forEach((fn) => fn());
  live.follow(id, maxSeq);
  toBottom();
  markRead();
  input.focus();
}

/** The listing this chat is about; for its seller, reserve / sold. */
async function listingBar(card, peer, redraw) {
  const l = await get(`/api/listings/${card.id}`);
  const seller = l.seller.id === app.me.id;
  const act = (fn) => async () => { try { await fn(); await redraw(); } catch (e) { toast(e.message); } };
  return h('div.listing-bar',
    l.thumbnail_url ? h('img', { src: l.thumbnail_url, alt: l.title, width: 44, height: 44 }) : null,
    h('a', { href: `#/listings/${l.id}` },
      h('span.status-label', STATUS[l.status]), h('strong', l.title), h('span', won(l.price))),
    seller && peer && l.status !== 'sold' ? h('span.deal-actions',
      l.status === 'reserved'
        ? h('button.small', { type: 'button', onclick: act(() => del(`/api/listings/${l.id}/reservation`)) }, '예약 취소')
        : h('button.small', { type: 'button', onclick: act(() => post(`/api/listings/${l.id}/reservation`, { buyer_id: peer.id })) }, '예약하기'),
      h('button.small.primary', { type: 'button', onclick: act(() => post(`/api/listings/${l.id}/sold`, { buyer_id: peer.id })) }, '거래완료'))
      : null,
    !seller && l.status === 'sold' && l.buyer_id === app.me.id
      ? h('a.button.small', { href: `#/listings/${l.id}` }, '후기 보내기') : null);
}
