// Small DOM and formatting helpers. Text always goes in as text nodes
// (never innerHTML), so user content cannot inject markup.

import { del, put } from './api.js';

/** h('button.primary', {onclick, type: 'submit'}, 'text', child, ...) */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const won = (n) => `${Number(n).toLocaleString('ko-KR')}원`;

/** "방금 전", "3분 전", "2시간 전", "4일 전", or a date. */
export function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return '방금 전';
  if (s < 3600) return `${Math.floor(s / 60)}분 전`;
  if (s < 86400) return `${Math.floor(s / 3600)}시간 전`;
  if (s < 86400 * 7) return `${Math.floor(s / 86400)}일 전`;
  return new Date(ms).toLocaleDateString('ko-KR');
}

export const clock = (ms) =>
  new Date(ms).toLocaleTimeString('ko-KR', { hour: 'numeric', minute: '2-digit' });

export const CATEGORIES = {
  digital: '디지털기기', appliances: '생활가전', furniture: '가구/인테리어', kids: '유아동',
  clothing: '의류', beauty: '뷰티/미용', sports: '스포츠/레저', books: '도서', games: '게임/취미',
  pets: '반려동물용품', plants: '식물', tickets: '티켓/교환권', food: '가공식품', other: '기타',
};

export const STATUS = { selling: '판매중', reserved: '예약중', sold: '거래완료', hidden: '숨김' };

export const REVIEW_TAGS = {
  kind: '친절하고 매너가 좋아요', punctual: '시간 약속을 잘 지켜요', fast_response: '응답이 빨라요',
  as_described: '상품 상태가 설명과 같아요', fair_price: '좋은 가격에 거래했어요',
  good_packaging: '포장이 꼼꼼해요', rude: '불친절해요', late: '약속 시간에 늦었어요',
  no_show: '약속 장소에 나타나지 않았어요', not_as_described: '상품 상태가 설명과 달라요',
};

/** Manner temperature, Karrot style: the score as °C. */
export const manner = (score) => `${Number(score).toFixed(1)}°C`;

let toastTimer;
/** A short message at the bottom of the screen (also read by screen readers). */
export function toast(text) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div.field', h('label', { for: id }, label), input, hint && h('small.hint', hint));
}

/** Disable a form's submit button while `fn` runs; show its error. */
export async function busy(form, fn) {
  const btn = form.querySelector('[type=submit]');
  const out = form.querySelector('.form-error');
  if (btn) btn.disabled = true;
  if (out) out.textContent = '';
  try {
    return await fn();
  } catch (e) {
    if (out) out.textContent = e.message || String(e);
    else toast(e.message || String(e));
    return undefined;
  } finally {
    if (btn) btn.disabled = false;
  }
}

export const avatar = (name) => h('span.avatar', { 'aria-hidden': 'true' }, (name || '?').slice(0, 1));

/** A list item's square picture, or a placeholder glyph without one. */
export const thumb = (url, alt, placeholder) => (url
  ? h('img.thumb', { src: url, alt, loading: 'lazy', width: 96, height: 96 })
  : h('span.thumb.placeholder', { 'aria-hidden': 'true' }, placeholder));

/**
 * A heart that keeps something (a favourite, a wishlist entry): PUT or
 * DELETE `path` as it is pressed; `labels` = [to add, to remove].
 */
export function heart(path, pressed, labels) {
  const btn = h('button.fav', { type: 'button' });
  const show = (on) => {
    btn.setAttribute('aria-pressed', String(on));
    btn.setAttribute('aria-label', labels[on ? 1 : 0]);
    btn.textContent = on ? '♥' : '♡';
  };
  btn.addEventListener('click', async () => {
    const on = btn.getAttribute('aria-pressed') !== 'true';
    try {
      await (on ? put(path) : del(path));
      show(on);
    } catch (e) { toast(e.message); }
  });
  show(pressed);
  return btn;
}
