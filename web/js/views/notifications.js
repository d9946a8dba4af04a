// The notification inbox: newest first, unread marked, read one / all.

import { app } from '../app.js';
import { get, post } from '../api.js';
import { ago, h, mount, toast } from '../ui.js';

export async function view(main) {
  const list = h('ul.inbox', { 'aria-label': '알림' });
  const render = async () => {
    const inbox = await get('/api/me/notifications?limit=50');
    mount(list, inbox.items.length ? inbox.items.map((n) => h(`li${n.read ? '' : '.unread'}`,
      h('a', {
        href: n.link ? `#${n.link}` : '#/notifications',
        onclick: async () => { if (!n.read) { try { await post(`/api/me/notifications/${n.id}/read`); } catch { /* shown next time */ } } },
      }, h('strong', n.title), h('span', n.body), h('time', ago(n.created_at)))))
      : h('li.empty', '새 알림이 없어요.'));
  };
  app.on('notification', render);
  mount(main, h('section.notifications',
    h('h1', '알림'),
    h('button.small', {
      type: 'button',
      onclick: async () => { try { await post('/api/me/notifications/read_all'); await render(); } catch (e) { toast(e.message); } },
    }, '모두 읽음'),
    list));
  await render();
}
