// A tiny element builder: h('div', { class: 'x', onclick: fn, dataset: {...} }, children...).

export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value)
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value)
    } else if (key === 'style' && typeof value === 'object') {
      Object.assign(el.style, value)
    } else if (key in el && typeof value !== 'string') {
      el[key] = value
    } else {
      el.setAttribute(key, value === true ? '' : String(value))
    }
  }
  append(el, children)
  return el
}

function append (el, children) {
  for (const child of children) {
    if (child == null || child === false) continue
    if (Array.isArray(child)) append(el, child)
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
}

/** A labelled input: the label wraps the input so it is its accessible name. */
export function field (label, attrs) {
  const input = h('input', attrs)
  return { input, el: h('label', { class: 'field' }, h('span', {}, label), input) }
}

let toastTimer = null

/** Shows a short message in the page's toast (`data-testid="toast"`). */
export function toast (message, kind = 'info') {
  let el = document.querySelector('[data-testid="toast"]')
  if (!el) {
    el = h('div', { class: 'toast', role: 'status', 'aria-live': 'polite', 'data-testid': 'toast' })
    document.body.append(el)
  }
  el.textContent = message
  el.dataset.kind = kind
  el.hidden = false
  clearTimeout(toastTimer)
  toastTimer = setTimeout(() => { el.hidden = true }, 4000)
}

/** A colour derived from a string (user ids → cursor colours). */
export function colorFor (seed) {
  let hash = 0
  for (const ch of String(seed)) hash = (hash * 31 + ch.charCodeAt(0)) | 0
  return `hsl(${Math.abs(hash) % 360} 70% 45%)`
}
