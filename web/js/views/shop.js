// The shop: products with options, wishlist, cart, checkout (the sandbox
// gateway in development), my orders, cancel.

import { app } from '../app.js';
import { del, get, patch, post, qs } from '../api.js';
import { ago, busy, field, h, heart, mount, thumb, toast, won } from '../ui.js';
import { infinite } from './feed.js';

export const PRODUCT_CATEGORIES = {
  bags: '가방', watches: '시계', jewelry: '주얼리', shoes: '신발', clothing: '의류',
  accessories: '액세서리', beauty: '뷰티', other: '기타',
};

export const ORDER_STATUS = {
  pending_payment: '결제 대기', paid: '결제 완료', partially_cancelled: '부분 취소',
  cancelled: '취소됨', expired: '기한 만료', cancelled_by_user: '주문 취소',
};

const STOCK = { in_stock: '', low: '품절 임박', sold_out: '품절' };

function productCard(p) {
  return h('li.item', h('a.item-link', { href: `#/products/${p.id}` },
    thumb(p.thumbnail_url, p.name, '🛍️'),
    h('span.item-body',
      h('span.item-meta', p.brand),
      h('span.item-title', p.name),
      h('span.item-price', p.in_stock ? null : h('span.status.sold', '품절'), won(p.base_price)),
      h('span.item-counts',
        p.review_count ? h('span', `★ ${Number(p.rating).toFixed(1)} (${p.review_count})`) : null,
        p.wishlist_count ? h('span', `♡ ${p.wishlist_count}`) : null))));
}

export async function view(main, params) {
  const q = params.get('q') || '';
  const category = params.get('category') || '';
  const sort = params.get('sort') || '';
  const search = h('input', { type: 'search', name: 'q', value: q, placeholder: '브랜드, 상품명 검색', 'aria-label': '상품 검색어' });
  const cat = h('select', { name: 'category', 'aria-label': '카테고리' },
    h('option', { value: '' }, '전체'),
    Object.entries(PRODUCT_CATEGORIES).map(([k, v]) => h('option', { value: k, selected: k === category }, v)));
  const order = h('select', { name: 'sort', 'aria-label': '정렬' },
    [['', '최신순'], ['popular', '인기순'], ['price_asc', '낮은 가격순'], ['price_desc', '높은 가격순']]
      .map(([k, v]) => h('option', { value: k, selected: k === sort }, v)));
  const form = h('form.search', {
    role: 'search',
    onsubmit: (e) => {
      e.preventDefault();
      app.go(`/shop${qs({ q: search.value.trim(), category: cat.value, sort: order.value })}`);
    },
  }, search, h('button', { type: 'submit' }, '검색'), h('span.row.filters-inline', cat, order));
  const list = h('ul.items', { 'aria-label': '상품' });
  const sentinel = infinite(list, async (cursor) => {
    const page = await get(`/api/products${qs({ q, category, sort, cursor, limit: 20 })}`);
    return { items: page.items.map(productCard), next_cursor: page.next_cursor };
  });
  mount(main, h('section.shop',
    h('div.row.shop-head', h('h1', '쇼핑'), h('a.button.small', { href: '#/cart' }, '🛒 장바구니'),
      h('a.button.small', { href: '#/orders' }, '주문 내역'), h('a.button.small', { href: '#/wishlist' }, '♡ 찜')),
    form, list, sentinel));
}

export async function product(main, id) {
  const p = await get(`/api/products/${id}`);
  const options = p.options.map((o) => h('option', { value: o.id, disabled: o.stock_state === 'sold_out' },
    `${o.label} · ${won(o.price)}${STOCK[o.stock_state] ? ` (${STOCK[o.stock_state]}${o.stock_state === 'low' && o.stock != null ? ` ${o.stock}개 남음` : ''})` : ''}`));
  const option = h('select', { name: 'option', required: true }, options);
  const qty = h('input', { name: 'quantity', type: 'number', min: 1, max: 99, value: 1, inputMode: 'numeric' });
  const wish = heart(`/api/products/${id}/wishlist`, p.in_wishlist, ['찜하기', '찜 해제']);
  const form = h('form.card.buy', { onsubmit: (e) => e.preventDefault() },
    field('옵션', option), field('수량', qty),
    h('p.form-error', { role: 'alert' }),
    h('div.row',
      h('button', {
        type: 'button',
        onclick: () => busy(form, async () => {
          await post('/api/cart/items', { option_id: Number(option.value), quantity: Number(qty.value) });
          toast('장바구니에 담았어요');
        }),
      }, '장바구니 담기'),
      h('button.primary', {
        type: 'button',
        onclick: () => busy(form, async () => {
          const o = await post('/api/orders', { from: 'buy_now', option_id: Number(option.value), quantity: Number(qty.value) });
          app.go(`/orders/${o.order_number}`);
        }),
      }, '바로 구매')));
  const reviews = await get(`/api/products/${id}/reviews`).catch(() => null);
  const reviewItems = reviews ? (reviews.items || reviews) : [];
  mount(main, h('article.listing.product',
    p.images.length
      ? h('div.gallery', { role: 'group', 'aria-label': `사진 ${p.images.length}장` },
        p.images.map((m, i) => h('img', { src: m.url, alt: `${p.name} 사진 ${i + 1}` })))
      : h('div.gallery.none', { 'aria-hidden': 'true' }, '🛍️'),
    h('p.meta', p.brand, ' · ', PRODUCT_CATEGORIES[p.category] || p.category),
    h('h1', p.name),
    h('p.price-line', h('strong.price', won(p.base_price)), ' ', wish),
    p.review_count ? h('p.meta', `★ ${Number(p.rating).toFixed(1)} · 후기 ${p.review_count}`) : null,
    h('p.description', p.description),
    p.status === 'on_sale' ? form : h('p.meta', '지금은 판매하지 않아요'),
    reviewItems.length ? [h('h2', '구매 후기'),
      h('ul.inbox', reviewItems.slice(0, 10).map((r) => h('li', h('span', `${'★'.repeat(r.rating || 0)} ${r.text || r.body || ''}`))))] : null));
}

export async function cart(main) {
  const box = h('div');
  const render = async () => {
    const c = await get('/api/cart');
    if (!c.lines.length) {
      mount(box, h('p.empty', '장바구니가 비어 있어요. ', h('a', { href: '#/shop' }, '쇼핑하러 가기')));
      return;
    }
    const change = (o, q) => async () => {
      try {
        if (q < 1) await del(`/api/cart/items/${o}`);
        else await patch(`/api/cart/items/${o}`, { quantity: q });
        await render();
      } catch (e) { toast(e.message); }
    };
    const order = h('form.card', {
      onsubmit: (e) => {
        e.preventDefault();
        busy(order, async () => {
          const o = await post('/api/orders', { from: 'cart' });
          app.go(`/orders/${o.order_number}`);
        });
      },
    }, h('p.total', '합계 ', h('strong', won(c.total))), h('p.form-error', { role: 'alert' }),
    h('button.primary', { type: 'submit', disabled: !c.lines.some((l) => l.available) }, '주문하기'));
    mount(box,
      h('ul.cart', c.lines.map((l) => h('li.cart-line', { dataset: { option: l.option_id } },
        h('a', { href: `#/products/${l.product_id}` }, h('span.meta', l.brand), ' ', h('strong', l.product_name)),
        h('span.meta', l.option_label, l.available ? '' : ' · 품절'),
        h('span.row',
          h('button.small', { type: 'button', 'aria-label': '하나 빼기', onclick: change(l.option_id, l.quantity - 1) }, '−'),
          h('span.qty', { 'aria-label': '수량' }, String(l.quantity)),
          h('button.small', { type: 'button', 'aria-label': '하나 더', onclick: change(l.option_id, l.quantity + 1) }, '+'),
          h('strong.line-total', won(l.line_total)),
          h('button.small.danger', { type: 'button', onclick: change(l.option_id, 0) }, '삭제'))))),
      order);
  };
  mount(main, h('section.cart-page', h('h1', '장바구니'), box));
  await render();
}

export async function orders(main) {
  const list = h('ul.items', { 'aria-label': '주문 내역' });
  let before;
  const sentinel = infinite(list, async () => {
    const page = await get(`/api/me/orders${qs({ before, limit: 20 })}`);
    before = page.next_before;
    return {
      items: page.items.map((o) => h('li.item', h('a.item-link', { href: `#/orders/${o.order_number}` },
        h('span.item-body',
          h('span.item-title', o.lines.map((l) => l.product_name).join(', ')),
          h('span.item-meta', `${o.order_number} · ${ago(o.created_at)}`),
          h('span.item-price', h('span.order-status', ORDER_STATUS[o.status] || o.status), ' ', won(o.total)))))),
      next_cursor: page.next_before ? String(page.next_before) : null,
    };
  });
  mount(main, h('section', h('h1', '주문 내역'), list, sentinel));
}

const PAY_KEY = 'jangteo.pay';

/** Load a script once (Toss's widget SDK). */
function script(src) {
  return new Promise((resolve, reject) => {
    if ([...document.scripts].some((x) => x.src === src)) { resolve(); return; }
    const el = document.createElement('script');
    el.src = src;
    el.onload = () => resolve();
    el.onerror = () => reject(new Error('결제 모듈을 불러오지 못했어요'));
    document.head.append(el);
  });
}

/** The pay box: a button per provider this server takes payments with. */
async function payBox(o, again) {
  const p = await get('/api/payments/providers');
  const box = h('form.card.pay', { onsubmit: (e) => e.preventDefault() }, h('h2', '결제하기'));
  const error = h('p.form-error', { role: 'alert' });
  const parts = [];
  if (p.providers.includes('toss') && p.toss_client_key) {
    // Toss's payment widget: methods and agreement drawn by its SDK; it
    // sends the buyer to /pay/return with paymentKey, orderId and amount.
    const methods = h('div', { id: 'toss-methods' });
    const agreement = h('div', { id: 'toss-agreement' });
    const button = h('button.primary', { type: 'button', disabled: true }, `토스페이먼츠로 ${won(o.total)} 결제`);
    parts.push(h('div.toss', methods, agreement, button));
    (async () => {
      try {
        await script(p.toss_sdk_url);
        const widgets = window.TossPayments(p.toss_client_key).widgets({ customerKey: `user-${app.me.id}` });
        await widgets.setAmount({ currency: 'KRW', value: o.total });
        await widgets.renderPaymentMethods({ selector: '#toss-methods', variantKey: 'DEFAULT' });
        await widgets.renderAgreement({ selector: '#toss-agreement', variantKey: 'AGREEMENT' });
        button.disabled = false;
        button.onclick = () => busy(box, () => widgets.requestPayment({
          orderId: o.order_number,
          orderName: o.lines.map((l) => l.product_name).join(', ').slice(0, 100),
          successUrl: `${location.origin}/pay/return?provider=toss&result=success`,
          failUrl: `${location.origin}/pay/return?provider=toss&result=fail`,
          customerEmail: app.me.email,
          customerName: app.me.nickname,
        }));
      } catch (e) { error.textContent = e.message || String(e); }
    })();
  }
  if (p.providers.includes('kakaopay')) {
    parts.push(h('button.kakaopay', {
      type: 'button',
      onclick: () => busy(box, async () => {
        const r = await post('/api/payments/ready', { order_number: o.order_number, provider: 'kakaopay' });
        sessionStorage.setItem(PAY_KEY, JSON.stringify({ order: o.order_number, key: r.payment_key, amount: o.total }));
        location.href = window.innerWidth < 768 ? r.redirect_mobile_url : r.redirect_pc_url;
      }),
    }, '카카오페이로 결제'));
  }
  if (p.providers.includes('sandbox')) {
    parts.push(h('p.meta', '테스트 결제 (실제로 돈이 나가지 않아요)'), h('button.primary.sandbox', {
      type: 'button',
      onclick: () => busy(box, async () => {
        // The sandbox stands in for a provider's payment window: the key
        // is ours to make up, the amount must be the order's.
        await post('/api/payments/confirm', {
          order_number: o.order_number,
          payment_key: `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
          amount: o.total,
          provider: 'sandbox',
        });
        toast('결제가 완료되었어요');
        again();
      }),
    }, `${won(o.total)} 결제하기`));
  }
  if (!parts.length) parts.push(h('p.meta', '이 서버에서는 웹 결제를 쓸 수 없어요.'));
  box.append(...parts, error);
  return box;
}

/**
 * Back from a provider's payment page (`/pay/return?...`): confirm with
 * our server (which checks the amount against the order), then show the
 * order. Returns the route to go to.
 */
export async function payReturn(params) {
  const provider = params.get('provider');
  const order = params.get('orderId') || params.get('order');
  try {
    if (provider === 'toss' && params.get('result') === 'success') {
      await post('/api/payments/confirm', {
        order_number: order,
        payment_key: params.get('paymentKey'),
        amount: Number(params.get('amount')),
        provider: 'toss',
      });
      toast('결제가 완료되었어요');
    } else if (provider === 'kakaopay' && params.get('result') === 'approve') {
      const saved = JSON.parse(sessionStorage.getItem(PAY_KEY) || 'null');
      if (!saved || saved.order !== order) throw new Error('결제 정보를 찾지 못했어요. 주문에서 다시 결제해 주세요.');
      await post('/api/payments/confirm', {
        order_number: order,
        payment_key: saved.key,
        amount: saved.amount,
        provider: 'kakaopay',
        pg_token: params.get('pg_token'),
      });
      sessionStorage.removeItem(PAY_KEY);
      toast('결제가 완료되었어요');
    } else {
      toast(params.get('message') || '결제를 마치지 못했어요');
    }
  } catch (e) {
    toast(e.message || String(e));
  }
  return order ? `/orders/${order}` : '/orders';
}

export async function order(main, number) {
  const o = await get(`/api/orders/${number}`);
  const again = () => order(main, number);
  const cancellable = o.status === 'pending_payment' || o.status === 'paid' || o.status === 'partially_cancelled';
  const cancel = h('form.card', {
    onsubmit: (e) => {
      e.preventDefault();
      if (!window.confirm('주문을 취소할까요?')) return;
      busy(cancel, async () => {
        await post(`/api/orders/${number}/cancel`, { reason: '웹에서 취소' });
        toast('주문을 취소했어요');
        again();
      });
    },
  }, h('p.form-error', { role: 'alert' }), h('button.danger', { type: 'submit' }, '주문 취소'));
  mount(main, h('section.order', { dataset: { status: o.status } },
    h('h1', '주문 상세'),
    h('p.meta', `주문번호 ${o.order_number} · ${ago(o.created_at)}`),
    h('p', h('strong.order-status', ORDER_STATUS[o.status] || o.status)),
    o.status === 'pending_payment' ? h('p.meta', `${new Date(o.expires_at).toLocaleTimeString('ko-KR')}까지 결제해 주세요`) : null,
    h('ul.cart', o.lines.map((l) => h('li.cart-line',
      h('strong', l.product_name), h('span.meta', [l.brand, l.option_label].filter(Boolean).join(' · ')),
      h('span', `${won(l.unit_price)} × ${l.quantity}`, l.cancelled_quantity ? ` (취소 ${l.cancelled_quantity})` : ''),
      h('strong.line-total', won(l.amount))))),
    h('p.total', '합계 ', h('strong', won(o.total))),
    o.payment ? h('p.meta.paid-with', `결제 ${won(o.payment.amount)} · ${o.payment.provider}`,
      o.payment.cancelled_amount ? ` · 환불 ${won(o.payment.cancelled_amount)}` : '') : null,
    o.status === 'pending_payment' ? await payBox(o, again) : null,
    cancellable ? cancel : null));
}

export async function wishlist(main) {
  const list = h('ul.items', { 'aria-label': '찜한 상품' });
  const sentinel = infinite(list, async (cursor) => {
    const page = await get(`/api/me/wishlist${qs({ cursor, limit: 20 })}`);
    return { items: page.items.map((w) => productCard(w.product)), next_cursor: page.next_cursor };
  });
  mount(main, h('section', h('h1', '찜한 상품'), list, sentinel));
}

/** "Buy with pay" on a used listing: an order of one item at its price. */
export async function buyListing(id) {
  const o = await post(`/api/listings/${id}/order`);
  app.go(`/orders/${o.order_number}`);
}

