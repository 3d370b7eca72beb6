/**
 * Hover details of a node or an edge, as DOM (text only).
 *
 * Props:
 * @typedef {Object} TooltipProps
 * @property {import('./graph.js').Graph} graph
 * @property {'node' | 'edge'} kind
 * @property {number} index node or edge index
 * @property {string[]} labels tokens [T] (for node positions)
 * @property {string} method selected method (listed first)
 */
import { h } from '../shared/dom.js';
import { fmt, showToken } from '../shared/format.js';
import { INPUT_NAMES } from './graph.js';
import { headOf } from './layout.js';

/**
 * Build the tooltip content.
 * @param {TooltipProps} p
 * @returns {HTMLElement[]}
 */
export function tooltipContent(p) {
  const g = p.graph;
  const scoreRows = (scores) =>
    Object.entries(scores ?? {})
      .sort(([a], [b]) => (a === p.method ? -1 : b === p.method ? 1 : 0))
      .map(([m, v]) => h('tr', {}, h('td', {}, m), h('td', {}, fmt(v))));
  if (p.kind === 'node') {
    const n = g.nodes[p.index];
    const facts = [`${n.feature_type}`, `layer ${n.layer}`];
    if (n.feature_type === 'attention') facts.push(`head ${headOf(n)}`);
    if (n.ctx_idx !== null && n.ctx_idx !== undefined) facts.push(`pos ${n.ctx_idx} ${showToken(p.labels[n.ctx_idx])}`);
    return [
      h('div', { class: 'tt-title' }, n.node_id),
      h('div', {}, facts.join(' · ')),
      n.influence !== undefined ? h('div', {}, `influence ${fmt(n.influence)}`) : null,
      h('table', {}, ...scoreRows(n.scores)),
    ].filter((x) => x !== null);
  }
  const l = g.circuit.links[p.index];
  const input = INPUT_NAMES[g.input[p.index]];
  return [
    h('div', { class: 'tt-title' }, `${l.source} → ${l.target}${input ? ` (${input})` : ''}`),
    h('div', {}, `weight ${fmt(l.weight)}`),
    h('table', {}, ...scoreRows(l.scores)),
  ];
}
