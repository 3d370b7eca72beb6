/**
 * The run's metadata block: provenance, model, dataset, metric, rules, timings, date, first prompt pair.
 *
 * Props: the validated run.json (the contract's RunFile, src/contracts/run.ts).
 * @typedef {import('../../../contracts/run.ts').RunFile} RunFile
 */
import { h } from '../shared/dom.js';
import { fmt, formatDate, showToken } from '../shared/format.js';

/**
 * Render the summary into `el` (replacing its content).
 * @param {HTMLElement} el
 * @param {RunFile} run
 * @param {string[]} methods the run's methods in display order
 */
export function renderRunSummary(el, run, methods) {
  /** @type {HTMLElement[]} */
  const rows = [];
  const add = (/** @type {string} */ k, /** @type {string | HTMLElement} */ v) => rows.push(h('dt', {}, k), h('dd', {}, v));
  add('model', run.model.path ?? '–');
  if (run.model.sha256) add('files sha256', h('code', {}, run.model.sha256.slice(0, 16) + '…'));
  const p = run.provenance;
  add('task', `${p.task}${p.seed !== null ? ` (seed ${p.seed})` : ''}, ${run.dataset.pairs.length} prompt pair${run.dataset.pairs.length === 1 ? '' : 's'}`);
  add('prompts sha256', h('code', { id: 'dataset-hash' }, p.dataset_sha256.slice(0, 16) + '…'));
  add('weights sha256', p.model_sha256 ? h('code', {}, p.model_sha256.slice(0, 16) + '…') : 'not recorded (older run file)');
  add('metric', `${run.metric.name}: clean ${fmt(run.metric.clean)}, corrupt ${fmt(run.metric.corrupt)}`);
  if (run.rules) add('LRP rules', run.rules);
  add('methods', methods.map((m) => `${m}${run.timings?.[m] !== undefined ? ` (${fmt(run.timings[m], 3)} s)` : ''}`).join(', '));
  add('created', formatDate(run.created));
  add('tokens', run.labels.map((t, k) => `${k}:${showToken(t)}`).join(' '));
  const pair = run.dataset.pairs[0];
  if (pair) {
    add('clean', `${pair.clean}  →  ${showToken(pair.answer)}`);
    add('corrupt', `${pair.corrupt}  →  ${showToken(pair.wrong)}`);
  }
  el.replaceChildren(h('dl', { class: 'meta-grid', id: 'run-meta' }, ...rows));
}
