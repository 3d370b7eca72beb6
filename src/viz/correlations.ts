/**
 * Agreement of each method with activation patching, per component: Pearson r and Spearman ρ
 * over all cells (layer × pos, layer × head, ...), like Table 1 of the RelP paper.
 * Computed server-side (simple-statistics) so the browser code needs no statistics.
 */
import { sampleCorrelation, sampleRankCorrelation } from 'simple-statistics';
import { flattenTensor } from './validate-run.ts';
import type { CorrelationCell, CorrelationTable, RunFile } from './types.ts';

/** Reference method every other method is compared with. */
export const REFERENCE_METHOD = 'activation';

/** Display order of known components; others follow alphabetically. */
export const COMPONENT_ORDER = ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'z', 'z_pos', 'q', 'k', 'v', 'pattern'];

/** Display order of known methods; others follow alphabetically. */
export const METHOD_ORDER = ['activation', 'atp', 'atp*', 'relp'];

/** Sort names by a preferred order, unknown names last in alphabetical order. */
export function orderBy(names: Iterable<string>, order: string[]): string[] {
  const rank = (n: string) => {
    const k = order.indexOf(n);
    return k < 0 ? order.length : k;
  };
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Pearson and Spearman correlation of paired samples, skipping pairs where either is NaN.
 * Both are null when fewer than 3 pairs remain or either side is constant (undefined correlation).
 * @param a [n] @param b [n]
 */
export function correlate(a: Float64Array, b: Float64Array): CorrelationCell {
  if (a.length !== b.length) throw new Error(`correlate: lengths differ (${a.length} vs ${b.length})`);
  const x: number[] = [];
  const y: number[] = [];
  for (let k = 0; k < a.length; k++) {
    if (Number.isFinite(a[k]!) && Number.isFinite(b[k]!)) {
      x.push(a[k]!);
      y.push(b[k]!);
    }
  }
  const n = x.length;
  const constant = (v: number[]) => v.every((t) => t === v[0]);
  if (n < 3 || constant(x) || constant(y)) return { pearson: null, spearman: null, n };
  const clean = (r: number) => (Number.isFinite(r) ? Math.max(-1, Math.min(1, r)) : null);
  return { pearson: clean(sampleCorrelation(x, y)), spearman: clean(sampleRankCorrelation(x, y)), n };
}

/**
 * Correlation table of every non-reference method against `activation`, per component that both
 * have with the same shape. Empty when the run has no activation-patching scores.
 */
export function correlationTable(run: RunFile): CorrelationTable {
  const ref = run.scores[REFERENCE_METHOD];
  const methods = orderBy(Object.keys(run.scores), METHOD_ORDER).filter((m) => m !== REFERENCE_METHOD);
  if (!ref) return { reference: REFERENCE_METHOD, methods, rows: [] };
  const rows: CorrelationTable['rows'] = [];
  for (const component of orderBy(Object.keys(ref), COMPONENT_ORDER)) {
    const refT = ref[component]!;
    const refFlat = flattenTensor(refT);
    const cells: Record<string, CorrelationCell> = {};
    for (const m of methods) {
      const t = run.scores[m]?.[component];
      if (!t || t.shape.join() !== refT.shape.join() || t.axes.join() !== refT.axes.join()) continue;
      cells[m] = correlate(refFlat, flattenTensor(t));
    }
    if (Object.keys(cells).length > 0) rows.push({ component, cells });
  }
  return { reference: REFERENCE_METHOD, methods: methods.filter((m) => rows.some((r) => r.cells[m])), rows };
}
