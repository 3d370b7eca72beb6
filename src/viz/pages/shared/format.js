/** Number, size, date and token formatting shared by the pages. Pure functions. */

/**
 * A compact number: 4 significant digits, exponent for very small/large values.
 * @param {number | null | undefined} x
 * @returns {string} '–' for null/NaN
 */
export function fmt(x, digits = 4) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a < 1e-3 || a >= 1e5) return x.toExponential(Math.max(digits - 2, 1));
  return String(Number(x.toPrecision(digits)));
}

/**
 * Bytes as B/kB/MB/GB (powers of 1024).
 * @param {number} n
 */
export function formatBytes(n) {
  const units = ['B', 'kB', 'MB', 'GB'];
  let v = n;
  let k = 0;
  while (v >= 1024 && k < units.length - 1) {
    v /= 1024;
    k++;
  }
  return `${k === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[k]}`;
}

/**
 * ISO date as `YYYY-MM-DD HH:MM` (UTC), or '–'.
 * @param {string | null | undefined} iso
 */
export function formatDate(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

/**
 * A token for display: quoted so leading spaces show, e.g. `" Mary"`.
 * @param {string | undefined} tok
 */
export function showToken(tok) {
  return tok === undefined ? '?' : JSON.stringify(tok);
}

/**
 * Escape text for plotly, which renders a subset of HTML in titles, tick labels and hover text
 * and decodes entities: `<`, `>` and `&` in tokens must not be read as tags.
 * @param {string} s
 */
export function plotlyText(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
