/**
 * The circuit view's state in the URL query, so a view can be shared and restored:
 * `?method=relp&threshold=0.0123&pins=a9.h6,m0`. Pure functions.
 *
 * @typedef {Object} ViewState
 * @property {string | null} method edge-score method (null = the circuit's default)
 * @property {number | null} threshold |score| threshold (null = the default view)
 * @property {string[]} pins pinned node ids, in pin order
 */

/**
 * Read the state from a query string (`location.search`). Pins are split on literal commas before
 * decoding, so a node id containing an (encoded) comma survives.
 * @param {string} search e.g. "?method=relp&threshold=0.01&pins=a1.h2,m0"
 * @returns {ViewState}
 */
export function parseState(search) {
  /** @type {ViewState} */
  const state = { method: null, threshold: null, pins: [] };
  const q = search.startsWith('?') ? search.slice(1) : search;
  for (const part of q.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = safeDecode(eq < 0 ? part : part.slice(0, eq));
    const raw = eq < 0 ? '' : part.slice(eq + 1);
    if (key === 'method') state.method = safeDecode(raw) || null;
    else if (key === 'threshold') {
      const t = Number(safeDecode(raw));
      state.threshold = raw !== '' && Number.isFinite(t) && t >= 0 ? t : null;
    } else if (key === 'pins') {
      state.pins = raw.split(',').map(safeDecode).filter((p) => p !== '');
    }
  }
  state.pins = [...new Set(state.pins)];
  return state;
}

/**
 * Write the state as a query string (with the leading "?"); the threshold keeps full precision
 * so restoring it keeps exactly the same edges.
 * @param {{method: string, threshold: number, pins: string[]}} state
 * @returns {string}
 */
export function serializeState(state) {
  const parts = [`method=${encodeURIComponent(state.method)}`, `threshold=${encodeURIComponent(String(state.threshold))}`];
  if (state.pins.length) parts.push(`pins=${state.pins.map((p) => encodeURIComponent(p)).join(',')}`);
  return `?${parts.join('&')}`;
}

/** decodeURIComponent that returns the input unchanged on a malformed escape ('+' stays '+': we never write it for a space). */
function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Slider position (0..steps) <-> |score| threshold on a log scale between the smallest nonzero
 * and the largest |score|. Position 0 keeps every nonzero edge, `steps` keeps the strongest.
 * @param {number} pos
 * @param {number} lo smallest nonzero |score|
 * @param {number} hi largest |score|
 * @param {number} steps
 */
export function sliderToThreshold(pos, lo, hi, steps) {
  if (!(lo > 0) || !(hi > lo)) return lo > 0 ? lo : 0;
  return lo * Math.pow(hi / lo, Math.max(0, Math.min(steps, pos)) / steps);
}

/**
 * Inverse of {@link sliderToThreshold}, rounded and clamped to 0..steps.
 * @param {number} threshold
 * @param {number} lo
 * @param {number} hi
 * @param {number} steps
 */
export function thresholdToSlider(threshold, lo, hi, steps) {
  if (!(lo > 0) || !(hi > lo) || !(threshold > lo)) return 0;
  return Math.max(0, Math.min(steps, Math.round((steps * Math.log(threshold / lo)) / Math.log(hi / lo))));
}
