/**
 * Tiny DOM helpers. Text always goes through textContent, never innerHTML, so run data (token
 * strings, node ids, error messages) cannot inject markup.
 */

/**
 * Create an element (typed by its tag: `h('canvas')` is an HTMLCanvasElement).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number | boolean | EventListener | undefined>} [attrs]
 *   attributes; `on<event>` keys add listeners; `class` sets className; false/undefined skip.
 * @param {...(Node | string | number | null | undefined | false)} children text or nodes
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false || v === null) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...children);
  return el;
}

/**
 * Append children (strings become text nodes).
 * @param {Node} el
 * @param {...(Node | string | number | null | undefined | false)} children
 */
export function append(el, ...children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

/**
 * Replace an element's content with an error box (role=alert).
 * @param {HTMLElement} el
 * @param {string} title
 * @param {string} message specific reason, shown as text
 */
export function showError(el, title, message) {
  el.replaceChildren(h('div', { class: 'error-box', role: 'alert', id: 'error' }, h('h2', {}, title), h('p', { class: 'error-message' }, message)));
}

/**
 * The element with `id`, which the page shell always renders.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id} element`);
  return el;
}

/**
 * The plotly.js global (loaded by the page shell from /vendor/plotly.js), or undefined.
 * @returns {any}
 */
export function plotly() {
  return /** @type {any} */ (window).Plotly;
}
