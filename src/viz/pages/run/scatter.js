/**
 * Method-vs-activation scatter for one component: one point per cell, one trace per method,
 * the y = x line, and Pearson r / Spearman ρ (computed server-side) in the legend and title.
 * Magnitude methods (atp*) are plotted against |reference|, as they are correlated.
 * Uses SVG `scatter`, not `scattergl`: scattergl needs CSP 'unsafe-eval' (see src/viz/security.ts)
 * and the point counts here (≤ L·H·T, a few thousand) are fine for SVG.
 *
 * Props:
 * @typedef {Object} ScatterMethod
 * @property {string} method e.g. "relp"
 * @property {import('../../../contracts/score-tensor.ts').ScoreTensor} tensor same shape as the reference tensor
 * @property {number | null} pearson r with the reference
 * @property {number | null} spearman ρ with the reference
 * @property {boolean} magnitude the method scores magnitudes: plotted (and correlated) against |reference|
 *
 * @typedef {Object} MethodScatterProps
 * @property {string} component e.g. "resid_pre"
 * @property {string} reference reference method, "activation"
 * @property {import('../../../contracts/score-tensor.ts').ScoreTensor} referenceTensor
 * @property {ScatterMethod[]} methods
 * @property {string[]} labels tokens [T]
 */
import { fmt, plotlyText } from '../shared/format.js';
import { methodColor } from '../shared/colors.js';
import { plotly } from '../shared/dom.js';
import { flattenCells } from './data.js';
import { PLOT_CONFIG } from './heatmap.js';

/**
 * Draw the scatter into `el`.
 * @param {HTMLElement} el
 * @param {MethodScatterProps} props
 * @returns {Promise<void>}
 */
export async function renderMethodScatter(el, props) {
  const ref = flattenCells(props.referenceTensor, props.labels);
  const traces = [];
  let lo = Infinity;
  let hi = -Infinity;
  const stats = [];
  for (const [k, m] of props.methods.entries()) {
    const cur = flattenCells(m.tensor, props.labels);
    const x = [];
    const y = [];
    const text = [];
    for (let k = 0; k < ref.values.length; k++) {
      const signed = ref.values[k];
      const b = cur.values[k];
      if (signed === null || b === null) continue;
      const a = m.magnitude ? Math.abs(signed) : signed;
      x.push(a);
      y.push(b);
      text.push(plotlyText(ref.hover[k]));
      lo = Math.min(lo, a, b);
      hi = Math.max(hi, a, b);
    }
    const vs = m.magnitude ? ` vs |${props.reference}|` : '';
    const label = m.pearson === null ? `${m.method}${vs}: no correlation` : `${m.method}${vs}: r=${fmt(m.pearson, 3)}, ρ=${fmt(m.spearman, 3)}`;
    stats.push(label);
    traces.push({
      type: 'scatter',
      mode: 'markers',
      name: plotlyText(label),
      x,
      y,
      text,
      marker: { size: 5, opacity: 0.75, color: methodColor(m.method, k) },
      hovertemplate: `%{text}<br>${plotlyText(m.magnitude ? `|${props.reference}|` : props.reference)} %{x:.4g}<br>${plotlyText(m.method)} %{y:.4g}<extra></extra>`,
    });
  }
  if (!Number.isFinite(lo)) {
    lo = -1;
    hi = 1;
  }
  const pad = (hi - lo) * 0.05 || 0.1;
  traces.unshift({ type: 'scatter', mode: 'lines', name: 'y = x', x: [lo - pad, hi + pad], y: [lo - pad, hi + pad], line: { color: '#999', dash: 'dash', width: 1 }, hoverinfo: 'skip' });
  const layout = {
    title: { text: plotlyText(`${props.component}: method vs ${props.reference}`), font: { size: 13 }, x: 0.02, xanchor: 'left' },
    margin: { l: 52, r: 8, t: 30, b: 44 },
    xaxis: { title: { text: plotlyText(`${props.reference} patching`) }, zeroline: true, zerolinecolor: '#ccc' },
    yaxis: { title: { text: 'method' }, zeroline: true, zerolinecolor: '#ccc' },
    legend: { x: 0.01, y: 0.99, bgcolor: 'rgba(255,255,255,0.8)', font: { size: 11 } },
    font: { family: 'system-ui, sans-serif' },
  };
  el.setAttribute('aria-label', `${props.component} scatter; ${stats.join('; ')}`);
  await plotly().newPlot(el, traces, layout, PLOT_CONFIG);
}
