// Open chat rooms: browse and search, create, join (passcode, capacity,
// manner threshold), leave; owners kick and ban.

import { app } from '../app.js';
import { get, post, qs } from '../api.js';
import { avatar, busy, field, h, manner, mount, toast } from '../ui.js';
import { infinite } from './feed.js';
import { nickname } from './room.js';

function roomCard(r) {
  return h('li.item', h('a.item-link', { href: `#/open/${r.id}` },
    avatar(r.name),
    h('span.item-body',
      h('span.item-title', r.has_passcode ? '🔒 ' : '', r.name),
      h('span.item-meta', r.region ? `${r.region} · ` : '', `${r.member_count}/${r.capacity}명`,
        r.min_manner_score ? ` · 매너온도 ${manner(r.min_manner_score)} 이상` : ''),
      r.description ? h('span.item-meta', r.description) : null)));
}

export async function view(main, params) {
  const q = params.get('q') || '';
  const near = params.get('near') === '1';
  const search = h('input', { type: 'search', name: 'q', value: q, placeholder: '오픈채팅 검색', 'aria-label': '오픈채팅 검색어' });
  const list = h('ul.items', { 'aria-label': '오픈채팅 목록' });
  const sentinel = infinite(list, async (cursor) => {
    const page = await get(`/api/rooms${qs({ q, cursor, limit: 20, near: near ? 'true' : undefined })}`);
    return { items: page.items.map(roomCard), next_cursor: page.next_cursor };
  });
  mount(main, h('section.open',
    h('h1', '오픈채팅'),
    h('form.search', { role: 'search', onsubmit: (e) => { e.preventDefault(); app.go(`/open${qs({ q: search.value.trim() })}`); } },
      search, h('button', { type: 'submit' }, '검색')),
    h('div.row',
      h('a.button.primary', { href: '#/open/new' }, '새 오픈채팅 만들기'),
      near ? h('a.button', { href: `#/open${qs({ q })}` }, '전체 보기')
        : h('a.button', { href: `#/open${qs({ q, near: '1' })}` }, '내 근처만')),
    list, sentinel));
}

export async function create(main) {
  const name = h('input', { name: 'name', required: true, maxLength: 50 });
  const description = h('textarea', { name: 'description', rows: 3, maxLength: 500 });
  const capacity = h('input', { name: 'capacity', type: 'number', min: 2, max: 1500, value: 100 });
  const passcode = h('input', { name: 'passcode', type: 'password', minLength: 4, maxLength: 32, autocomplete: 'off' });
  const minManner = h('input', { name: 'min_manner_score', type: 'number', step: '0.1', min: 0, max: 99 });
  const mine = (await get('/api/me/neighbourhoods')).find((n) => n.active);
  const local = h('input', { name: 'local', type: 'checkbox', disabled: !mine });
  const form = h('form.card', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(form, async () => {
        const r = await post('/api/rooms', {
          kind: 'open',
          name: name.value.trim(),
          description: description.value.trim() || null,
          capacity: Number(capacity.value) || null,
          passcode: passcode.value || null,
          min_manner_score: minManner.value ? Number(minManner.value) : null,
          region: local.checked && mine ? mine.region.code : null,
        });
        app.go(`/chats/${r.id}`);
      });
    },
  },
  h('h1', '오픈채팅 만들기'),
  field('이름', name), field('소개', description), field('최대 인원', capacity, '2~1500명'),
  field('참여 코드 (선택)', passcode, '4자 이상; 비워 두면 누구나 들어와요'),
  field('참여 조건: 매너온도 (선택)', minManner),
  field(mine ? `${mine.region.name} 동네 방으로 만들기` : '동네 방 (내 동네를 먼저 설정해 주세요)', local,
    '인증한 이웃만 참여할 수 있어요'),
  h('p.form-error', { role: 'alert' }),
  h('button.primary', { type: 'submit' }, '만들기'));
  mount(main, h('section.narrow', form));
}

export async function detail(main, id) {
  const r = await get(`/api/rooms/${id}`);
  const owner = r.owner_id === app.me.id;
  const passcode = h('input', { name: 'passcode', type: 'password', autocomplete: 'off' });
  const join = h('form.card', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(join, async () => {
        await post(`/api/rooms/${id}/join`, r.has_passcode ? { passcode: passcode.value } : {});
        app.go(`/chats/${id}`);
      });
    },
  },
  r.has_passcode ? field('참여 코드', passcode) : null,
  h('p.form-error', { role: 'alert' }),
  h('button.primary', { type: 'submit' }, '참여하기'));
  const members = h('ul.members', { 'aria-label': '참여자' });
  mount(main, h('section.open-room',
    h('h1', r.name),
    h('p.meta', `${r.member_count}/${r.capacity}명`, r.min_manner_score ? ` · 매너온도 ${manner(r.min_manner_score)} 이상` : ''),
    r.description ? h('p', r.description) : null,
    r.is_member
      ? h('div.row',
        h('a.button.primary', { href: `#/chats/${id}` }, '대화하기'),
        h('button', {
          type: 'button',
          onclick: async () => {
            try { await post(`/api/rooms/${id}/leave`); toast('나왔어요'); app.go('/open'); } catch (e) { toast(e.message); }
          },
        }, '나가기'))
      : join,
    r.is_member ? h('h2', '참여자') : null,
    members));
  if (!r.is_member) return;
  const list = await get(`/api/rooms/${id}/members`);
  mount(members, list.map((m) => {
    const name = h('span.name', `#${m.user_id}`);
    nickname(m.user_id).then((n) => { name.textContent = n; });
    const act = (what) => async () => {
      try {
        await post(`/api/rooms/${id}/${what}`, { user_id: m.user_id });
        toast(what === 'kick' ? '내보냈어요' : '차단했어요');
        detail(main, id);
      } catch (e) { toast(e.message); }
    };
    return h('li', { dataset: { user: m.user_id } }, name, m.role === 'owner' ? h('span.badge', '방장') : null,
      owner && m.user_id !== app.me.id ? h('span.row',
        h('button.small', { type: 'button', onclick: act('kick') }, '내보내기'),
        h('button.small.danger', { type: 'button', onclick: act('ban') }, '차단')) : null);
  }));
}
