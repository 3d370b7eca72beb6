/**
 * The circuit legend: edge colour scale (sign and |score|), node kinds, and how to interact.
 *
 * Props:
 * @typedef {Object} LegendProps
 * @property {number} maxAbs largest |score| of the selected method (labels the scale ends)
 * @property {string} method selected method
 */
import { h } from '../shared/dom.js';
import { fmt } from '../shared/format.js';
import { edgeColor } from '../shared/colors.js';

/**
 * Render the legend into `el` (replacing its content).
 * @param {HTMLElement} el
 * @param {LegendProps} props
 */
export function renderLegend(el, props) {
  const bar = h('canvas', { class: 'legend-bar', width: 240, height: 14, 'aria-hidden': 'true' });
  const ctx = bar.getContext('2d');
  if (ctx) {
    for (let x = 0; x < 240; x++) {
      const v = (x / 239) * 2 - 1;
      ctx.fillStyle = edgeColor(Math.sign(v) || 1, Math.abs(v));
      ctx.fillRect(x, 0, 1, 14);
    }
  }
  const kind = (cls, label) => h('div', { class: 'legend-row' }, h('span', { class: `swatch ${cls}` }), label);
  el.replaceChildren(
    h('h3', {}, 'Legend'),
    h('div', {}, `Edge score (${props.method}): colour = sign, width/darkness = |score|`),
    bar,
    h('div', { class: 'legend-scale' }, h('span', {}, fmt(-props.maxAbs, 3)), h('span', {}, '0'), h('span', {}, fmt(props.maxAbs, 3))),
    kind('embedding', 'input (embeddings)'),
    kind('attention', 'attention head a{layer}.h{head}'),
    kind('mlp', 'MLP m{layer}'),
    kind('logits', 'logits'),
    h('p', { class: 'muted' }, 'Edges into a head enter left (q), centre (k) or right (v). Faint nodes have no edge above the threshold.'),
    h('p', { class: 'muted' }, 'Click a node (or focus the graph, move with the arrow keys, press Enter) to pin it and highlight every path through it. Esc clears pins.'),
  );
}
