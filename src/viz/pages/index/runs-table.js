/**
 * The runs table of the index page.
 *
 * Props (`RunsTableProps`), one row per run as served by `/api/runs`:
 * @typedef {Object} RunRow
 * @property {string} id run directory name
 * @property {string | null} model model file name (or config name)
 * @property {string | null} task dataset kind, e.g. "ioi"
 * @property {string[]} methods e.g. ["activation", "atp", "atp*", "relp"]
 * @property {string | null} date ISO date
 * @property {number} size total bytes of the run's files
 * @property {boolean} hasRun has a run.json
 * @property {boolean} hasCircuit has a circuit.json
 * @property {boolean} hasFaithfulness has a faithfulness.json
 * @property {string | null} error why a file of the run cannot be shown
 *
 * @typedef {Object} RunsTableProps
 * @property {RunRow[]} runs
 */
import { h } from '../shared/dom.js';
import { formatBytes, formatDate } from '../shared/format.js';

/**
 * Render the runs table into `el` (replacing its content).
 * @param {HTMLElement} el
 * @param {RunsTableProps} props
 */
export function renderRunsTable(el, props) {
  if (props.runs.length === 0) {
    el.replaceChildren(h('p', { id: 'no-runs' }, 'No runs yet. Runs are folders holding run.json (and optionally circuit.json, faithfulness.json).'));
    return;
  }
  const enc = encodeURIComponent;
  const rows = props.runs.map((r) =>
    h(
      'tr',
      { 'data-run-id': r.id },
      h('td', {}, r.hasRun || r.hasCircuit ? h('a', { href: `/runs/${enc(r.id)}`, class: 'run-link' }, r.id) : r.id),
      h('td', {}, r.model ?? '–'),
      h('td', {}, r.task ?? '–'),
      h('td', {}, ...r.methods.map((m) => h('span', { class: 'badge' }, m))),
      h('td', {}, formatDate(r.date)),
      h('td', { class: 'num' }, formatBytes(r.size)),
      h('td', {}, r.hasCircuit ? h('a', { href: `/runs/${enc(r.id)}/circuit` }, 'circuit') : '–'),
      h('td', {}, r.error ? h('span', { class: 'badge error', title: r.error }, 'error') : h('span', { class: 'muted' }, 'ok')),
    ),
  );
  el.replaceChildren(
    h(
      'table',
      { class: 'data', id: 'runs-table' },
      h('thead', {}, h('tr', {}, ...['Run', 'Model', 'Task', 'Methods', 'Date (UTC)', 'Size', 'Circuit', 'Status'].map((t) => h('th', { scope: 'col', class: t === 'Size' ? 'num' : undefined }, t)))),
      h('tbody', {}, ...rows),
    ),
  );
}
