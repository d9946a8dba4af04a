// The feed: newest listings first, infinite scroll, search and filters.

import { app } from '../app.js';
import { get, qs } from '../api.js';
import { CATEGORIES, STATUS, ago, h, mount, thumb, won } from '../ui.js';

export function listingCard(item) {
  return h('li.item', h('a.item-link', { href: `#/listings/${item.id}` },
    thumb(item.thumbnail_url, item.title, '📦'),
    h('span.item-body',
      h('span.item-title', item.title),
      h('span.item-meta', [item.region, CATEGORIES[item.category] || item.category, ago(item.created_at)].filter(Boolean).join(' · ')),
      h('span.item-price',
        item.status !== 'selling' ? h(`span.status.${item.status}`, STATUS[item.status]) : null,
        won(item.price)),
      h('span.item-counts',
        item.chat_count ? h('span', { 'aria-label': `채팅 ${item.chat_count}` }, `💬 ${item.chat_count}`) : null,
        item.favourite_count ? h('span', { 'aria-label': `관심 ${item.favourite_count}` }, `♡ ${item.favourite_count}`) : null))));
}

/** A list that loads pages as its end scrolls into view. */
export function infinite(list, fetchPage) {
  let cursor;
  let done = false;
  let loading = false;
  const sentinel = h('div.sentinel', { 'aria-hidden': 'true' });
  const more = async () => {
    if (done || loading) return;
    loading = true;
    try {
      const page = await fetchPage(cursor);
      for (const el of page.items) list.append(el);
      cursor = page.next_cursor;
      done = !cursor;
      sentinel.textContent = done ? '' : '더 불러오는 중…';
      if (done && !list.children.length) list.append(h('li.empty', '아직 아무것도 없어요.'));
    } catch (e) {
      sentinel.textContent = e.message;
      done = true;
    } finally {
      loading = false;
    }
    // Still visible (short page, tall screen): keep going.
    if (!done && sentinel.getBoundingClientRect().top < window.innerHeight + 200) more();
  };
  const io = new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) more(); },
    { rootMargin: '200px' });
  io.observe(sentinel);
  app.cleanup.push(() => io.disconnect());
  more();
  return sentinel;
}

export async function view(main, params) {
  const q = params.get('q') || '';
  const filters = {
    q,
    category: params.get('category') || '',
    min_price: params.get('min_price') || '',
    max_price: params.get('max_price') || '',
  };
  const search = h('input', { type: 'search', name: 'q', value: q, placeholder: '어떤 물건을 찾으세요?', 'aria-label': '검색어' });
  const category = h('select', { name: 'category', 'aria-label': '카테고리' },
    h('option', { value: '' }, '전체 카테고리'),
    Object.entries(CATEGORIES).map(([k, v]) => h('option', { value: k, selected: k === filters.category }, v)));
  const min = h('input', { type: 'number', name: 'min_price', min: 0, inputMode: 'numeric', value: filters.min_price, placeholder: '최소', 'aria-label': '최소 가격' });
  const max = h('input', { type: 'number', name: 'max_price', min: 0, inputMode: 'numeric', value: filters.max_price, placeholder: '최대', 'aria-label': '최대 가격' });
  const form = h('form.search', {
    role: 'search',
    onsubmit: (e) => {
      e.preventDefault();
      app.go(`/${qs({ q: search.value.trim(), category: category.value, min_price: min.value, max_price: max.value })}`);
    },
  }, search, h('button', { type: 'submit' }, '검색'),
  h('details.filters', filters.category || filters.min_price || filters.max_price ? { open: true } : {},
    h('summary', '필터'), category, h('span.range', min, '~', max)));
  const list = h('ul.items', { 'aria-label': q ? `"${q}" 검색 결과` : '최근 올라온 물건' });
  const sentinel = infinite(list, async (cursor) => {
    const page = await get(`/api/listings${qs({ ...filters, cursor, limit: 20 })}`);
    return { items: page.items.map(listingCard), next_cursor: page.next_cursor };
  });
  mount(main, h('section.feed', h('h1.visually-hidden', '홈'), form, list, sentinel,
    h('a.fab', { href: '#/new', 'aria-label': '물건 팔기' }, '+ 글쓰기')));
}
