// Administrators: reports, the shop's products and stock, and payment
// failures to settle by hand. The server checks the role on every call;
// these screens only save an admin from curl.

import { app } from '../app.js';
import { get, post } from '../api.js';
import { ago, busy, field, h, mount, toast, won } from '../ui.js';
import { PRODUCT_CATEGORIES } from './shop.js';

const TABS = [['reports', '신고'], ['products', '상품·재고'], ['payments', '결제 실패']];

export async function view(main, params) {
  if (!app.me || app.me.role !== 'admin') throw new Error('관리자만 볼 수 있어요');
  const tab = params.get('tab') || 'reports';
  const body = h('div.admin-body');
  mount(main, h('section.admin',
    h('h1', '관리자'),
    h('nav.subtabs', { 'aria-label': '관리 메뉴' },
      TABS.map(([k, label]) => h('a', { href: `#/admin?tab=${k}`, 'aria-current': k === tab ? 'page' : null }, label))),
    body));
  if (tab === 'products') await products(body);
  else if (tab === 'payments') await failures(body);
  else await reports(body);
}

async function reports(body) {
  const items = await get('/api/admin/reports?limit=50');
  mount(body, items.length
    ? h('ul.inbox', items.map((r) => h('li', h('a', {
      href: r.target_kind === 'listing' ? `#/listings/${r.target_id}` : r.target_kind === 'user' ? `#/user/${r.target_id}` : '#/admin',
    }, h('strong', `${r.target_kind} #${r.target_id}`), h('span', r.reason),
    h('time', `신고자 #${r.reporter_id} · ${ago(r.created_at)}`)))))
    : h('p.empty', '들어온 신고가 없어요.'));
}

async function products(body) {
  const page = await get('/api/products?limit=50');
  const name = h('input', { name: 'name', required: true });
  const brand = h('input', { name: 'brand', required: true });
  const category = h('select', { name: 'category' },
    Object.entries(PRODUCT_CATEGORIES).map(([k, v]) => h('option', { value: k }, v)));
  const price = h('input', { name: 'base_price', type: 'number', min: 0, required: true });
  const label = h('input', { name: 'option_label', required: true, value: '기본' });
  const sku = h('input', { name: 'sku', required: true });
  const stock = h('input', { name: 'stock', type: 'number', min: 0, value: 10 });
  const create = h('form.card', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(create, async () => {
        await post('/api/admin/products', {
          name: name.value.trim(), brand: brand.value.trim(), category: category.value,
          base_price: Number(price.value), status: 'on_sale',
          options: [{ label: label.value.trim(), sku: sku.value.trim(), stock: Number(stock.value) }],
        });
        toast('상품을 올렸어요');
        await products(body);
      });
    },
  }, h('h2', '새 상품'), field('상품명', name), field('브랜드', brand), field('카테고리', category),
  field('가격 (원)', price), field('옵션', label), field('SKU', sku), field('재고', stock),
  h('p.form-error', { role: 'alert' }), h('button.primary', { type: 'submit' }, '올리기'));
  const rows = [];
  for (const card of page.items) {
    const p = await get(`/api/products/${card.id}`);
    for (const o of p.options) {
      const delta = h('input', { name: 'delta', type: 'number', 'aria-label': `${p.name} ${o.label} 재고 증감`, placeholder: '+10 / -2' });
      const reason = h('input', { name: 'reason', 'aria-label': '사유', placeholder: '사유', value: '입고' });
      const form = h('form.row.stock-form', {
        dataset: { option: o.id },
        onsubmit: (e) => {
          e.preventDefault();
          busy(form, async () => {
            await post(`/api/admin/options/${o.id}/stock-adjustments`, { delta: Number(delta.value), reason: reason.value.trim() });
            toast('재고를 바꿨어요');
            await products(body);
          });
        },
      }, delta, reason, h('button.small', { type: 'submit' }, '적용'), h('p.form-error', { role: 'alert' }));
      rows.push(h('li.cart-line', { dataset: { option: o.id } },
        h('strong', `${p.brand} ${p.name}`), h('span.meta', `${o.label} (${o.sku}) · ${won(o.price)} · ${p.status}`),
        h('span', '재고 ', h('strong.stock', String(o.stock ?? '-'))), form));
    }
  }
  mount(body, h('h2', '재고'), rows.length ? h('ul.cart', rows) : h('p.empty', '상품이 없어요.'), create);
}

async function failures(body) {
  const f = await get('/api/admin/payments/failures');
  mount(body, f.items.length
    ? h('ul.inbox', f.items.map((x) => h('li', h('a', { href: x.order_number ? `#/orders/${x.order_number}` : '#/admin?tab=payments' },
      h('strong', `${x.kind === 'refund' ? '환불 실패' : '보상 실패'} · ${won(x.amount)}`),
      h('span', `${x.order_number || ''} ${x.error}`), h('time', ago(x.at))))))
    : h('p.empty', '처리할 결제 실패가 없어요.'));
}
