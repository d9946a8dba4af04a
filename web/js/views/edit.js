// New listing and edit listing, with image upload and preview.

import { app } from '../app.js';
import { api, get, patch, post } from '../api.js';
import { CATEGORIES, busy, field, h, mount } from '../ui.js';

export async function view(main, id) {
  const editing = typeof id === 'number' && !Number.isNaN(id);
  const l = editing ? await get(`/api/listings/${id}`) : null;
  if (l && l.seller.id !== app.me.id) throw new Error('내 글만 고칠 수 있어요');
  // Images: uploaded ones (media id + url) in display order.
  const images = l ? l.images.map((m) => ({ id: m.id, url: m.thumbnail_url })) : [];
  const previews = h('ul.previews', { 'aria-label': '사진' });
  const renderPreviews = () => mount(previews, images.map((img, i) => h('li',
    h('img', { src: img.url, alt: `사진 ${i + 1}${i === 0 ? ' (대표)' : ''}`, width: 72, height: 72 }),
    img.uploading ? h('span.uploading', '올리는 중…') : null,
    h('button.remove', {
      type: 'button',
      'aria-label': `사진 ${i + 1} 빼기`,
      onclick: () => { images.splice(images.indexOf(img), 1); renderPreviews(); },
    }, '×'))));
  const file = h('input', { type: 'file', name: 'images', accept: 'image/jpeg,image/png,image/webp', multiple: true });
  const title = h('input', { name: 'title', required: true, maxLength: 100, value: l ? l.title : '' });
  const price = h('input', { name: 'price', type: 'number', min: 0, inputMode: 'numeric', required: true, value: l ? l.price : '' });
  const category = h('select', { name: 'category', required: true },
    h('option', { value: '' }, '카테고리 선택'),
    Object.entries(CATEGORIES).map(([k, v]) => h('option', { value: k, selected: l && l.category === k }, v)));
  const description = h('textarea', { name: 'description', rows: 6, maxLength: 5000 });
  description.value = l ? l.description : '';
  const form = h('form.card.edit', {
    onsubmit: (e) => {
      e.preventDefault();
      busy(form, async () => {
        if (images.some((i) => i.uploading)) throw new Error('사진을 올리는 중이에요. 잠시 후 다시 눌러 주세요.');
        const body = {
          title: title.value.trim(),
          price: Number(price.value),
          category: category.value,
          description: description.value,
          images: images.map((i) => i.id),
        };
        const saved = editing ? await patch(`/api/listings/${id}`, body) : await post('/api/listings', body);
        app.go(`/listings/${saved.id}`);
      });
    },
  },
  h('h1', editing ? '글 수정하기' : '내 물건 팔기'),
  field('사진 (최대 10장)', file, '첫 사진이 대표 사진이에요'),
  previews,
  field('제목', title),
  field('카테고리', category),
  field('가격 (원)', price),
  field('자세한 설명', description),
  h('p.form-error', { role: 'alert' }),
  h('button.primary', { type: 'submit' }, editing ? '저장' : '작성 완료'));
  file.addEventListener('change', async () => {
    const out = form.querySelector('.form-error');
    for (const f of [...file.files].slice(0, 10 - images.length)) {
      // Preview at once from the local file, then swap in the server's id.
      const img = { id: null, url: URL.createObjectURL(f), uploading: true };
      images.push(img);
      renderPreviews();
      const data = new FormData();
      data.append('file', f);
      try {
        const m = await api('POST', '/api/media', data);
        img.id = m.id;
        img.uploading = false;
      } catch (err) {
        images.splice(images.indexOf(img), 1);
        out.textContent = `${f.name}: ${err.message}`;
      }
      renderPreviews();
    }
    file.value = '';
  });
  renderPreviews();
  mount(main, h('section.narrow', form));
}
