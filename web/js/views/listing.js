// One listing: gallery, price, seller and manner score, favourite, chat
// with the seller; for the seller: edit, chats, reserve / sold; after a
// sale: the review.

import { app } from '../app.js';
import { del, get, post } from '../api.js';
import { buyListing } from './shop.js';
import { CATEGORIES, REVIEW_TAGS, STATUS, ago, avatar, busy, field, h, heart, manner, mount, toast, won } from '../ui.js';

export async function view(main, id) {
  const l = await get(`/api/listings/${id}`);
  const mine = app.me && l.seller.id === app.me.id;
  const fav = heart(`/api/listings/${id}/favourite`, l.is_favourite, ['관심 목록에 추가', '관심 목록에서 빼기']);
  const chat = h('button.primary', {
    type: 'button',
    disabled: l.status === 'sold',
    onclick: async () => {
      try {
        const room = await post(`/api/listings/${id}/chat`);
        app.go(`/chats/${room.id}`);
      } catch (e) { toast(e.message); }
    },
  }, '채팅하기');
  const gallery = l.images.length
    ? h('div.gallery', { role: 'group', 'aria-label': `사진 ${l.images.length}장` },
      l.images.map((m, i) => h('img', { src: m.url, alt: `${l.title} 사진 ${i + 1}`, width: m.width, height: m.height })))
    : h('div.gallery.none', { 'aria-hidden': 'true' }, '📦');
  mount(main, h('article.listing',
    gallery,
    h('a.seller', { href: `#/user/${l.seller.id}` }, avatar(l.seller.nickname),
      h('span.seller-name', l.seller.nickname),
      h('span.manner', { title: '매너온도' }, manner(l.seller.manner_score))),
    h('h1', l.status !== 'selling' ? h(`span.status.${l.status}`, STATUS[l.status]) : null, l.title),
    h('p.meta', [l.region, CATEGORIES[l.category] || l.category, ago(l.created_at)].filter(Boolean).join(' · ')),
    h('p.description', l.description),
    h('p.meta', `채팅 ${l.chat_count} · 관심 ${l.favourite_count} · 조회 ${l.view_count}`),
    mine ? await sellerPanel(l) : null,
    l.status === 'sold' && app.me && (mine || l.buyer_id === app.me.id) && l.buyer_id ? reviewForm(l, mine) : null,
    h('div.buybar', fav, h('strong.price', won(l.price)),
      mine ? h('a.button', { href: `#/listings/${id}/edit` }, '수정하기') : [
        l.status === 'selling' ? h('button', {
          type: 'button',
          onclick: async () => { try { await buyListing(id); } catch (e) { toast(e.message); } },
        }, '장터페이 구매') : null,
        chat])));
}

async function sellerPanel(l) {
  if (l.status === 'sold') return null;
  const chats = await get(`/api/listings/${l.id}/chats`);
  const buyer = h('select', { name: 'buyer' },
    chats.map((c) => h('option', { value: c.buyer_id, selected: c.buyer_id === l.reserved_for }, c.buyer_nickname)));
  const until = h('select', { name: 'until' },
    h('option', { value: '' }, '기한 없이'), h('option', { value: '1' }, '1시간'),
    h('option', { value: '24' }, '하루'), h('option', { value: '72' }, '3일'));
  const form = h('form.card.deal', { onsubmit: (e) => e.preventDefault() },
    h('h2', '거래 상태'),
    chats.length ? [
      h('ul.chats-mini', chats.map((c) => h('li', h('a', { href: `#/chats/${c.room_id}` }, `${c.buyer_nickname}님과의 채팅`)))),
      field('구매자', buyer), field('예약 기한', until),
      h('div.row',
        h('button', {
          type: 'button',
          onclick: () => busy(form, async () => {
            const hours = Number(until.value);
            await post(`/api/listings/${l.id}/reservation`,
              { buyer_id: Number(buyer.value), until: hours ? Date.now() + hours * 3600e3 : null });
            toast('예약중으로 바꿨어요');
            app.go(`/listings/${l.id}?t=${Date.now()}`);
          }),
        }, '예약하기'),
        l.status === 'reserved' ? h('button', {
          type: 'button',
          onclick: () => busy(form, async () => {
            await del(`/api/listings/${l.id}/reservation`);
            app.go(`/listings/${l.id}?t=${Date.now()}`);
          }),
        }, '예약 취소') : null,
        h('button.primary', {
          type: 'button',
          onclick: () => busy(form, async () => {
            await post(`/api/listings/${l.id}/sold`, { buyer_id: Number(buyer.value) });
            toast('거래완료로 바꿨어요');
            app.go(`/listings/${l.id}?t=${Date.now()}`);
          }),
        }, '거래완료')),
    ] : h('p.meta', '아직 채팅이 없어요.'),
    h('p.form-error', { role: 'alert' }));
  return form;
}

function reviewForm(l, mine) {
  const who = mine ? '구매자' : '판매자';
  const good = h('input', { type: 'radio', name: 'rating', value: 'good', checked: true });
  const bad = h('input', { type: 'radio', name: 'rating', value: 'bad' });
  const tags = Object.entries(REVIEW_TAGS).map(([k, v]) =>
    h('label.tag', h('input', { type: 'checkbox', name: 'tags', value: k }), v));
  const text = h('textarea', { name: 'text', rows: 3, maxLength: 500 });
  const form = h('form.card.review', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(form, async () => {
        await post(`/api/listings/${l.id}/reviews`, {
          rating: good.checked ? 'good' : 'bad',
          tags: [...form.querySelectorAll('input[name=tags]:checked')].map((c) => c.value),
          text: text.value.trim() || null,
        });
        mount(form, h('p.done', '후기를 보냈어요. 고마워요!'));
      });
    },
  },
  h('h2', `${who}에게 거래 후기 보내기`),
  h('fieldset', h('legend', '거래는 어땠나요?'),
    h('label', good, ' 좋았어요'), h('label', bad, ' 별로였어요')),
  h('fieldset.tags', h('legend', '어떤 점이 그랬나요?'), tags),
  field('남기고 싶은 말', text),
  h('p.form-error', { role: 'alert' }),
  h('button.primary', { type: 'submit' }, '후기 보내기'));
  return form;
}
