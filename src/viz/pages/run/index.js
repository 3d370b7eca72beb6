/**
 * Entry of the run page: metadata, the correlation table, then one section per component with a
 * heatmap per method and a method-vs-activation scatter. Sections are drawn when they scroll near
 * the viewport, so a run with many components opens quickly.
 */
import { ApiError, getJson, pageRunId, runApi } from '../shared/api.js';
import { byId, h, plotly, showError } from '../shared/dom.js';
import { renderCorrelationTable } from './correlation-table.js';
import { sharedScale } from './data.js';
import { renderHeatmap } from './heatmap.js';
import { renderRunSummary } from './run-summary.js';
import { renderMethodScatter } from './scatter.js';

const root = byId('run');
const id = pageRunId();

/**
 * Draw one component section (heatmaps + scatter).
 * @param {HTMLElement} section
 * @param {import('../../../contracts/run.ts').RunFile} run validated run.json
 * @param {string} component
 * @param {import('../../../patching/correlation.ts').CorrelationTable} corr correlations API result (with the display order)
 */
async function drawSection(section, run, component, corr) {
  const row = /** @type {HTMLElement} */ (section.querySelector('.plot-row'));
  const methods = corr.order.methods.filter((m) => run.scores[m]?.[component]);
  const tensorOf = (/** @type {string} */ m) => /** @type {import('../../../contracts/score-tensor.ts').ScoreTensor} */ (run.scores[m]?.[component]);
  // One labelled colour scale for all heatmaps of this component, so panels compare by colour.
  const scale = sharedScale(methods.map(tensorOf));
  const scaleLabel = `${run.metric.name} (shared)`;
  for (const m of methods) {
    const t = tensorOf(m);
    const div = h('div', { class: `plot heatmap-plot${t.axes.length === 3 ? ' tall' : ''}`, 'data-method': m, 'data-component': component });
    row.appendChild(div);
    const note = corr.notes[m] ? ' (magnitude)' : '';
    await renderHeatmap(div, { title: `${m}${note} · ${component}`, tensor: t, labels: run.labels, scale, scaleLabel });
  }
  const ref = run.scores[corr.reference]?.[component];
  if (!ref) return void (section.dataset.rendered = '1');
  const cells = corr.rows.find((r) => r.component === component)?.cells ?? {};
  const others = methods.filter((m) => m !== corr.reference && cells[m]);
  if (ref && others.length > 0) {
    const div = h('div', { class: 'plot scatter-plot', 'data-component': component });
    row.appendChild(div);
    await renderMethodScatter(div, {
      component,
      reference: corr.reference,
      referenceTensor: ref,
      methods: others.map((m) => ({ method: m, tensor: tensorOf(m), pearson: cells[m]?.pearson ?? null, spearman: cells[m]?.spearman ?? null, magnitude: corr.against[m] !== corr.reference })),
      labels: run.labels,
    });
  }
  section.dataset.rendered = '1';
}

async function main() {
  if (document.body.dataset.hasRun === '0') {
    root.replaceChildren(h('p', {}, 'This run has no run.json. ', h('a', { href: `/runs/${encodeURIComponent(id)}/circuit` }, 'Open its circuit.')));
    return;
  }
  if (!plotly()) throw new ApiError(0, 'plotly.js did not load (/vendor/plotly.js)');
  const [run, corr] = await Promise.all([getJson(runApi(id)), getJson(runApi(id, 'correlations'))]);
  const components = corr.order.components;
  const summary = h('div', { class: 'run-summary' });
  const table = h('div', { id: 'correlations' });
  root.replaceChildren(
    h('div', { class: 'run-top' }, h('section', {}, h('h2', {}, 'Run'), summary), h('section', {}, h('h2', {}, 'Agreement with activation patching'), table)),
    h('nav', { class: 'comp-nav', 'aria-label': 'components' }, ...components.map((c) => h('a', { href: `#comp-${c}` }, c))),
  );
  renderRunSummary(summary, run, corr.order.methods);
  renderCorrelationTable(table, corr);
  const sections = components.map((c) => {
    const s = h('section', { class: 'component', id: `comp-${c}`, 'data-component': c }, h('h2', {}, c), h('div', { class: 'plot-row' }));
    root.appendChild(s);
    return s;
  });
  // Draw sections one at a time, in page order, as they come near the viewport.
  let queue = Promise.resolve();
  const draw = (s) => {
    if (s.dataset.queued) return queue;
    s.dataset.queued = '1';
    queue = queue.then(() => drawSection(s, run, s.dataset.component, corr)).catch((err) => {
      s.appendChild(h('p', { class: 'error-message', role: 'alert' }, `cannot draw ${s.dataset.component}: ${err instanceof Error ? err.message : String(err)}`));
    });
    return queue;
  };
  const io = new IntersectionObserver(
    (entries) => {
      for (const e of entries) if (e.isIntersecting) draw(e.target), io.unobserve(e.target);
    },
    { rootMargin: '600px 0px' },
  );
  sections.forEach((s) => io.observe(s));
  if (sections[0]) await draw(sections[0]);
}

main()
  .catch((err) => {
    const status = err instanceof ApiError && err.status ? ` (HTTP ${err.status})` : '';
    showError(root, `Run ${id} cannot be shown${status}`, err instanceof Error ? err.message : String(err));
  })
  .finally(() => {
    document.body.dataset.ready = '1';
  });
