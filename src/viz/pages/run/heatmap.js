/**
 * One plotly heatmap of a component's scores for one method.
 *
 * Props:
 * @typedef {Object} HeatmapProps
 * @property {string} title e.g. "relp · resid_pre"
 * @property {import('../../../contracts/score-tensor.ts').ScoreTensor} tensor [L, T] | [L, H] | [L, H, T]
 * @property {string[]} labels tokens [T] for the position axis
 * @property {{absMax: number, signed: boolean}} [scale] colour scale shared with the other heatmaps of the component (default: this tensor's own)
 * @property {string} [scaleLabel] colour bar title, e.g. the metric name
 */
import { plotly } from '../shared/dom.js';
import { PLOTLY_DIVERGING, PLOTLY_SEQUENTIAL } from '../shared/colors.js';
import { plotlyText } from '../shared/format.js';
import { tensorToHeatmap } from './data.js';

/** Plotly config shared by the run page's plots (no logo, no lasso/select tools). */
export const PLOT_CONFIG = { displaylogo: false, responsive: false, modeBarButtonsToRemove: ['lasso2d', 'select2d', 'autoScale2d'] };

/**
 * Draw the heatmap into `el`. Signed scores use the diverging scale centred at 0 with a symmetric
 * range, so white always means 0; all-nonnegative scores use a sequential scale from 0.
 * @param {HTMLElement} el
 * @param {HeatmapProps} props
 * @returns {Promise<void>}
 */
export async function renderHeatmap(el, props) {
  const d = tensorToHeatmap(props.tensor, props.labels);
  const scale = props.scale ?? { absMax: d.absMax, signed: d.signed };
  const range = scale.absMax > 0 ? scale.absMax : 1;
  const signed = scale.signed;
  const trace = {
    type: 'heatmap',
    z: d.z,
    x: d.x,
    y: d.z.map((_, r) => r),
    customdata: d.hover,
    hovertemplate: '%{customdata}<br>score %{z:.4g}<extra></extra>',
    colorscale: signed ? PLOTLY_DIVERGING : PLOTLY_SEQUENTIAL,
    zmin: signed ? -range : 0,
    zmax: range,
    zmid: signed ? 0 : undefined,
    colorbar: { thickness: 10, len: 0.9, tickfont: { size: 10 }, ...(props.scaleLabel ? { title: { text: plotlyText(props.scaleLabel), side: 'right', font: { size: 10 } } } : {}) },
    hoverongaps: false,
  };
  const layout = {
    title: { text: plotlyText(props.title), font: { size: 13 }, x: 0.02, xanchor: 'left' },
    margin: { l: 44, r: 8, t: 30, b: d.xTitle === 'position' ? 70 : 36 },
    xaxis: { tickmode: 'array', tickvals: d.x, ticktext: d.xText, tickangle: d.xTitle === 'position' ? -60 : 0, tickfont: { size: 10 }, automargin: false, title: { text: '' } },
    yaxis: { tickmode: 'array', tickvals: d.yTickVals, ticktext: d.yText, autorange: 'reversed', tickfont: { size: 10 }, title: { text: '' } },
    font: { family: 'system-ui, sans-serif' },
  };
  // The range drawn, for tests and for anyone comparing panels.
  el.dataset.zmin = String(trace.zmin);
  el.dataset.zmax = String(trace.zmax);
  await plotly().newPlot(el, [trace], layout, PLOT_CONFIG);
}
