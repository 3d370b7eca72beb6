/**
 * Pure data shaping for the run page: score tensors -> heatmap grids, flat cells with hover text.
 * No DOM and no plotly here, so it is unit-tested directly.
 *
 * A score tensor of run.json (the contract's type):
 * @typedef {import('../../../contracts/score-tensor.ts').ScoreTensor} ScoreTensor
 */
import { plotlyText, showToken } from '../shared/format.js';

/**
 * A heatmap grid.
 * @typedef {Object} HeatmapData
 * @property {(number|null)[][]} z [rows][cols] values (rows = layers, or layer·head for 3-D tensors)
 * @property {number[]} x [cols] column indices 0..cols-1 (indices, not labels: tokens repeat)
 * @property {string[]} xText [cols] tick labels (tokens, or h0..)
 * @property {number[]} yTickVals row indices that get a tick label
 * @property {string[]} yText tick labels for `yTickVals`
 * @property {string[][]} hover [rows][cols] plotly-escaped "layer 3 · pos 5 " John"" per cell
 * @property {string} xTitle
 * @property {string} yTitle
 * @property {number} absMax max |value| (0 when all missing)
 * @property {boolean} signed true when any value is negative
 */

/**
 * Describe one cell for hover text (unescaped).
 * @param {ScoreTensor['axes']} axes
 * @param {number[]} idx indices along `axes`
 * @param {string[]} labels tokens [T]
 */
export function cellLabel(axes, idx, labels) {
  return axes
    .map((a, k) => (a === 'pos' ? `pos ${idx[k]} ${showToken(labels[idx[k]])}` : `${a} ${idx[k]}`))
    .join(' · ');
}

/**
 * A token shortened for a tick label (hover text shows it in full).
 * @param {string} tok
 */
export function shortToken(tok, max = 10) {
  return tok.length > max ? `${tok.slice(0, max - 1)}…` : tok;
}

/**
 * Flatten a tensor row-major with a hover label per cell.
 * @param {ScoreTensor} t
 * @param {string[]} labels
 * @returns {{values: (number|null)[], hover: string[]}} both of length prod(shape)
 */
export function flattenCells(t, labels) {
  const values = [];
  const hover = [];
  const walk = (v, idx) => {
    if (idx.length === t.shape.length) {
      values.push(typeof v === 'number' ? v : null);
      hover.push(cellLabel(t.axes, idx, labels));
      return;
    }
    v.forEach((c, k) => walk(c, [...idx, k]));
  };
  walk(t.values, []);
  return { values, hover };
}

/**
 * Turn a tensor into a heatmap grid. 3-D [L, H, T] tensors become (L·H) rows × T columns.
 * @param {ScoreTensor} t
 * @param {string[]} labels tokens [T]
 * @returns {HeatmapData}
 */
export function tensorToHeatmap(t, labels) {
  const key = t.axes.join(',');
  let z;
  let rowIdx; // per row: indices of the non-column axes
  if (key === 'layer,pos' || key === 'layer,head') {
    z = t.values;
    rowIdx = t.values.map((_, l) => [l]);
  } else if (key === 'layer,head,pos') {
    z = [];
    rowIdx = [];
    t.values.forEach((heads, l) => heads.forEach((row, hd) => (z.push(row), rowIdx.push([l, hd]))));
  } else {
    throw new Error(`cannot draw a tensor with axes [${t.axes.join(', ')}]`);
  }
  const nCols = t.shape[t.shape.length - 1];
  const colAxis = t.axes[t.axes.length - 1];
  const x = Array.from({ length: nCols }, (_, k) => k);
  const xText = x.map((k) => plotlyText(colAxis === 'pos' ? shortToken(labels[k] ?? `pos ${k}`) : `h${k}`));
  const hover = rowIdx.map((ri) => x.map((c) => plotlyText(cellLabel(t.axes, [...ri, c], labels))));
  let yTickVals;
  let yText;
  if (key === 'layer,head,pos') {
    const H = t.shape[1];
    yTickVals = rowIdx.map((_, r) => r).filter((r) => r % H === 0);
    yText = yTickVals.map((r) => `L${rowIdx[r][0]}`);
  } else {
    yTickVals = rowIdx.map((_, r) => r);
    yText = yTickVals.map((r) => `L${r}`);
  }
  let absMax = 0;
  let signed = false;
  for (const row of z) {
    for (const v of row) {
      if (typeof v !== 'number') continue;
      if (Math.abs(v) > absMax) absMax = Math.abs(v);
      if (v < 0) signed = true;
    }
  }
  return {
    z,
    x,
    xText,
    yTickVals,
    yText,
    hover,
    xTitle: colAxis === 'pos' ? 'position' : 'head',
    yTitle: key === 'layer,head,pos' ? 'layer · head' : 'layer',
    absMax,
    signed,
  };
}

/**
 * One colour scale for several heatmaps (all methods of one component), so equal colours mean
 * equal scores across the panels: symmetric around 0 when any value is negative, else from 0.
 * @param {ScoreTensor[]} tensors
 * @returns {{absMax: number, signed: boolean}}
 */
export function sharedScale(tensors) {
  let absMax = 0;
  let signed = false;
  const walk = (/** @type {unknown} */ v) => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (typeof v === 'number' && Number.isFinite(v)) {
      if (Math.abs(v) > absMax) absMax = Math.abs(v);
      if (v < 0) signed = true;
    }
  };
  for (const t of tensors) walk(t.values);
  return { absMax, signed };
}
