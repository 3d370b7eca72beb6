/**
 * Faithfulness curves (recovered metric fraction vs number of edges, log x) as a small SVG chart,
 * one line per method, with the AUC (and MIB's CPR and CMD when the file has them) in the legend
 * and a marker at the current edge count.
 *
 * Props (`/api/runs/:id/faithfulness`):
 * @typedef {import('../../../contracts/faithfulness.ts').FaithfulnessCurve} FaithfulnessCurve
 *
 * @typedef {Object} FaithfulnessProps
 * @property {FaithfulnessCurve[]} curves
 * @property {number} keptEdges edges currently drawn (marker position)
 * @property {string} method highlighted method
 */
import { h } from '../shared/dom.js';
import { fmt } from '../shared/format.js';
import { methodColor } from '../shared/colors.js';

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** What CPR and CMD are, under the legend. */
export const MIB_NOTE = 'CPR, CMD (MIB): area under faithfulness f, and under |1 − f|, at 0.1%–100% of the edges; higher CPR and lower CMD are better (1 and 0 for a perfect circuit).';

/**
 * The legend text of one curve: method, ablation, AUC, and CPR / CMD when present.
 * @param {FaithfulnessCurve} c
 * @returns {string}
 */
export function legendText(c) {
  const mib = c.mib ? ` · CPR ${fmt(c.mib.cpr, 3)} · CMD ${fmt(c.mib.cmd, 3)}` : '';
  return `${c.method}${c.ablation ? ` (${c.ablation})` : ''}: AUC ${fmt(c.auc ?? null, 3)}${mib}`;
}

/**
 * Render the chart into `el` (replacing its content).
 * @param {HTMLElement} el
 * @param {FaithfulnessProps} props
 */
export function renderFaithfulness(el, props) {
  const W = 280;
  const H = 190;
  const m = { l: 34, r: 8, t: 8, b: 30 };
  const pts = props.curves.flatMap((c) => c.curve);
  if (pts.length === 0) {
    el.replaceChildren();
    return;
  }
  const maxE = Math.max(...pts.map((p) => p.edges), 1);
  const lx = (e) => Math.log10(1 + e);
  const X = (e) => m.l + (lx(e) / lx(maxE)) * (W - m.l - m.r);
  const yMin = Math.min(0, ...pts.map((p) => p.recovered));
  const yMax = Math.max(1, ...pts.map((p) => p.recovered));
  const Y = (v) => H - m.b - ((v - yMin) / (yMax - yMin)) * (H - m.t - m.b);
  const root = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'faithfulness curves', 'font-size': 10, 'font-family': 'system-ui, sans-serif' });
  root.appendChild(svg('line', { x1: m.l, y1: Y(0), x2: W - m.r, y2: Y(0), stroke: '#ccc' }));
  root.appendChild(svg('line', { x1: m.l, y1: Y(1), x2: W - m.r, y2: Y(1), stroke: '#ccc', 'stroke-dasharray': '3 2' }));
  root.appendChild(svg('line', { x1: m.l, y1: m.t, x2: m.l, y2: H - m.b, stroke: '#888' }));
  for (const v of [0, 0.5, 1]) root.appendChild(svg('text', { x: m.l - 4, y: Y(v) + 3, 'text-anchor': 'end', fill: '#59636e' }, String(v)));
  for (const e of [1, 10, 100, 1000, 10000, 100000].filter((e) => e <= maxE)) {
    root.appendChild(svg('text', { x: X(e), y: H - m.b + 12, 'text-anchor': 'middle', fill: '#59636e' }, e >= 1000 ? `${e / 1000}k` : String(e)));
  }
  root.appendChild(svg('text', { x: (W + m.l) / 2, y: H - 4, 'text-anchor': 'middle', fill: '#59636e' }, 'edges in circuit (log)'));
  const legend = [];
  props.curves.forEach((c, k) => {
    const color = methodColor(c.method, k);
    const d = c.curve
      .slice()
      .sort((a, b) => a.edges - b.edges)
      .map((p, i) => `${i ? 'L' : 'M'}${X(p.edges).toFixed(1)} ${Y(p.recovered).toFixed(1)}`)
      .join('');
    root.appendChild(svg('path', { d, stroke: color, 'stroke-width': c.method === props.method ? 2.5 : 1.5, fill: 'none' }));
    legend.push(h('div', { class: 'legend-row' }, h('span', { class: 'swatch square', 'data-color': color }), legendText(c)));
  });
  if (props.keptEdges > 0) {
    const x = X(Math.min(props.keptEdges, maxE));
    root.appendChild(svg('line', { x1: x, y1: m.t, x2: x, y2: H - m.b, stroke: '#0969da', 'stroke-dasharray': '2 2' }));
  }
  if (props.curves.some((c) => c.mib)) legend.push(h('p', { class: 'muted' }, MIB_NOTE));
  el.replaceChildren(h('h3', {}, 'Faithfulness'), root, ...legend);
  // Swatch colours via CSSOM (allowed under the strict CSP, unlike style attributes).
  el.querySelectorAll('.swatch[data-color]').forEach((s) => {
    const sw = /** @type {HTMLElement} */ (s);
    sw.style.background = sw.dataset.color ?? '';
  });
}
