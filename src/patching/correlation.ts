/**
 * Method-vs-method correlation tables (the RelP paper's Table 1 layout).
 */
import { sampleCorrelation, sampleRankCorrelation } from 'simple-statistics';
import type { MethodScores } from './score-grid.ts';
import { flatten } from './score-grid.ts';

/** Pearson and Spearman r of one method against the reference, on one component. */
export interface CorrelationCell {
  pearson: number;
  spearman: number;
  n: number;
}

/** table[component][method] = r against the reference method (default `activation`). */
export type CorrelationTable = Record<string, Record<string, CorrelationCell>>;

/**
 * Correlate every method with the reference on each component both have.
 * Constant vectors give NaN (reported as such, never hidden).
 */
export function correlationTable(scores: Record<string, MethodScores>, reference = 'activation'): CorrelationTable {
  const ref = scores[reference];
  if (!ref) throw new Error(`no "${reference}" scores to compare against (have: ${Object.keys(scores).join(', ') || 'none'})`);
  const table: CorrelationTable = {};
  for (const [comp, refGrid] of Object.entries(ref)) {
    if (!refGrid) continue;
    const x = flatten(refGrid);
    for (const [method, ms] of Object.entries(scores)) {
      if (method === reference) continue;
      const g = ms[comp as keyof MethodScores];
      if (!g) continue;
      const y = flatten(g);
      if (y.length !== x.length) throw new Error(`${method}/${comp}: ${y.length} values vs ${x.length} for ${reference}`);
      const safe = (f: () => number) => {
        try {
          const v = f();
          return Number.isFinite(v) ? v : NaN;
        } catch {
          return NaN;
        }
      };
      (table[comp] ??= {})[method] = { pearson: safe(() => sampleCorrelation(x, y)), spearman: safe(() => sampleRankCorrelation(x, y)), n: x.length };
    }
  }
  return table;
}

/** Format a table as text: rows = components, columns = methods (Pearson / Spearman). */
export function formatCorrelationTable(table: CorrelationTable, title: string): string {
  const comps = Object.keys(table);
  const methods = [...new Set(comps.flatMap((c) => Object.keys(table[c])))];
  const f = (v: number) => (Number.isNaN(v) ? '   nan' : v.toFixed(3).padStart(6));
  const head = ['component'.padEnd(12), ...methods.map((m) => `${m} r (ρ)`.padStart(17))].join(' ');
  const lines = comps.map((c) =>
    [c.padEnd(12), ...methods.map((m) => (table[c][m] ? `${f(table[c][m].pearson)} (${f(table[c][m].spearman)})`.padStart(17) : '-'.padStart(17)))].join(' '),
  );
  return [title, head, ...lines].join('\n');
}
