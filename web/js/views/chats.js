// My chats: latest activity first, unread badges and previews, live.

import { app } from '../app.js';
import { get } from '../api.js';
import { ago, avatar, h, mount } from '../ui.js';

export function roomTitle(r) {
  if (r.kind === 'direct' && r.peer) return r.peer.withdrawn ? '(탈퇴한 사용자)' : r.peer.nickname;
  return r.name;
}

function preview(m) {
  if (!m) return '';
  if (m.deleted) return '삭제된 메시지예요';
  return m.body;
}

export async function view(main) {
  const list = h('ul.rooms', { 'aria-label': '채팅 목록' });
  const render = async () => {
    const rooms = await get('/api/me/rooms');
    mount(list, rooms.items.length ? rooms.items.map((r) => h('li.room', { dataset: { room: r.id } },
      h('a', { href: `#/chats/${r.id}` },
        avatar(roomTitle(r)),
        h('span.room-body',
          h('span.room-title', roomTitle(r),
            r.kind === 'open' ? h('span.member-count', ` ${r.member_count}`) : null,
            h('span.room-time', ` · ${ago(r.last_activity_at)}`)),
          h('span.room-preview', preview(r.last_message))),
        r.unread ? h('span.count.unread', { 'aria-label': `안 읽은 메시지 ${r.unread}개` }, r.unread > 99 ? '99+' : String(r.unread)) : null,
        r.listing && r.listing.thumbnail_url
          ? h('img.room-thumb', { src: r.listing.thumbnail_url, alt: r.listing.title, width: 40, height: 40 }) : null)))
      : h('li.empty', '아직 채팅이 없어요. 마음에 드는 물건의 판매자와 대화해 보세요.'));
  };
  let timer;
  const soon = () => { clearTimeout(timer); timer = setTimeout(render, 150); };
  app.on('message', soon);
  app.on('badge', soon);
  app.on('joined', soon);
  app.on('removed', soon);
  app.on('status', (s) => { if (s.online) soon(); });
  app.cleanup.push(() => clearTimeout(timer));
  mount(main, h('section.chats', h('h1', '채팅'), list));
  await render();
}
