/**
 * The run's metadata block: model, dataset, metric, rules, timings, date, first prompt pair.
 *
 * Props: the validated run.json (see src/viz/types.ts `RunFile`); fields used:
 * @typedef {Object} RunSummaryProps
 * @property {{path?: string, sha256?: string}} model
 * @property {{kind?: string, seed?: number, pairs: {clean: string, corrupt: string, answer: string, wrong: string}[]}} dataset
 * @property {{name?: string, clean?: number, corrupt?: number}} [metric]
 * @property {string} [rules] "relp" | "relp-ah" | "attnlrp"
 * @property {Record<string, number>} [timings] method -> seconds
 * @property {string} [created] ISO date
 * @property {string[]} labels tokens [T]
 */
import { h } from '../shared/dom.js';
import { fmt, formatDate, showToken } from '../shared/format.js';
import { methodsOf } from './data.js';

/**
 * Render the summary into `el` (replacing its content).
 * @param {HTMLElement} el
 * @param {RunSummaryProps & {scores: object}} run
 */
export function renderRunSummary(el, run) {
  const rows = [];
  const add = (k, v) => rows.push(h('dt', {}, k), h('dd', {}, v));
  add('model', run.model.path ?? '–');
  if (run.model.sha256) add('sha256', h('code', {}, run.model.sha256.slice(0, 16) + '…'));
  add('task', `${run.dataset.kind ?? '–'}${run.dataset.seed !== undefined ? ` (seed ${run.dataset.seed})` : ''}, ${run.dataset.pairs.length} prompt pair${run.dataset.pairs.length === 1 ? '' : 's'}`);
  if (run.metric) add('metric', `${run.metric.name ?? '?'}: clean ${fmt(run.metric.clean)}, corrupt ${fmt(run.metric.corrupt)}`);
  if (run.rules) add('LRP rules', run.rules);
  add('methods', methodsOf(run).map((m) => `${m}${run.timings?.[m] !== undefined ? ` (${fmt(run.timings[m], 3)} s)` : ''}`).join(', '));
  add('created', formatDate(run.created));
  add('tokens', run.labels.map((t, k) => `${k}:${showToken(t)}`).join(' '));
  const pair = run.dataset.pairs[0];
  if (pair) {
    add('clean', `${pair.clean}  →  ${showToken(pair.answer)}`);
    add('corrupt', `${pair.corrupt}  →  ${showToken(pair.wrong)}`);
  }
  el.replaceChildren(h('dl', { class: 'meta-grid', id: 'run-meta' }, ...rows));
}
