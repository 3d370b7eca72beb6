/**
 * The diverging colour scale (ColorBrewer RdBu, reversed so positive = red, negative = blue,
 * zero = near-white), for plotly heatmaps and the circuit canvas. Pure functions.
 */

/** Stops of the scale from -1 to +1. */
export const DIVERGING_STOPS = ['#2166ac', '#67a9cf', '#d1e5f0', '#f7f7f7', '#fddbc7', '#ef8a62', '#b2182b'];

/** Plotly colorscale form of {@link DIVERGING_STOPS}; use with zmid 0 / symmetric zmin, zmax. */
export const PLOTLY_DIVERGING = DIVERGING_STOPS.map((c, k) => [k / (DIVERGING_STOPS.length - 1), c]);

/** Sequential scale (for scores that are all ≥ 0): near-white to red. */
export const PLOTLY_SEQUENTIAL = [[0, '#f7f7f7'], [0.5, '#ef8a62'], [1, '#b2182b']];

/**
 * Parse `#rrggbb`.
 * @param {string} hex
 * @returns {[number, number, number]}
 */
export function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * Colour of a signed value on the diverging scale.
 * @param {number} v value in [-1, 1] (clamped)
 * @returns {[number, number, number]} rgb 0–255
 */
export function divergingRgb(v) {
  const t = (Math.max(-1, Math.min(1, v)) + 1) / 2 * (DIVERGING_STOPS.length - 1);
  const k = Math.min(Math.floor(t), DIVERGING_STOPS.length - 2);
  const f = t - k;
  const a = hexToRgb(DIVERGING_STOPS[k]);
  const b = hexToRgb(DIVERGING_STOPS[k + 1]);
  return /** @type {[number, number, number]} */ ([0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * f)));
}

/**
 * Edge colour for the circuit: sign picks the hue, |score| / max picks how dark, so weak edges
 * fade toward light tones on a white background.
 * @param {number} sign +1 or -1
 * @param {number} t magnitude in [0, 1]
 * @param {number} [alpha]
 * @returns {string} css rgba()
 */
export function edgeColor(sign, t, alpha = 1) {
  const [r, g, b] = divergingRgb(sign * (0.3 + 0.7 * Math.max(0, Math.min(1, t))));
  return `rgba(${r},${g},${b},${alpha})`;
}

/** Colour of each method in scatters and faithfulness curves (activation is the reference axis). */
export const METHOD_COLORS = { activation: '#4d4d4d', atp: '#d95f02', 'atp*': '#7570b3', relp: '#1b9e77' };

/**
 * Colour of a method: {@link METHOD_COLORS}, else a fixed fallback palette by index.
 * @param {string} method
 * @param {number} k index among the methods shown
 */
export function methodColor(method, k) {
  return METHOD_COLORS[method] ?? ['#e7298a', '#66a61e', '#e6ab02', '#a6761d'][k % 4];
}

/** Node fill colours by feature type (kept in sync with the legend swatches in style.css). */
export const NODE_COLORS = { embedding: '#4d4d4d', attention: '#e08214', mlp: '#1b9e77', logits: '#7570b3' };
