/**
 * The one correlation of relp: each method against activation patching, per component, as
 * Pearson r and Spearman ρ over all cells (the RelP paper's Table 1 layout). `relp patch`,
 * `relp compare`, `relp demo`, the viewer and the notebooks all call this, so a table prints the
 * same everywhere.
 *
 * Rules: a cell that is not a finite number (null in the file, NaN) in either method is left out
 * of that pair; with fewer than 3 pairs left, or a constant side, the correlation is undefined
 * and reported as null (printed `–`), never as a number.
 */
import { sampleCorrelation, sampleRankCorrelation } from 'simple-statistics';
import { flattenTensor, type ScoreTensor } from '../contracts/score-tensor.ts';
import { COMPONENT_ORDER, METHOD_ORDER, REFERENCE_METHOD, orderBy } from './names.ts';

/** Pearson and Spearman r of one method against the reference on one component. */
export interface CorrelationCell {
  /** null: undefined (fewer than 3 finite pairs, or a constant side). */
  pearson: number | null;
  spearman: number | null;
  /** Number of cells finite in both methods. */
  n: number;
}

/** Rows = components, columns = methods (each against `reference`). */
export interface CorrelationTable {
  reference: string;
  /** Methods with at least one cell, in display order. */
  methods: string[];
  rows: { component: string; cells: Record<string, CorrelationCell> }[];
  /** Every method and component of the scores, in display order (for pages that draw them all). */
  order: { methods: string[]; components: string[] };
  /** method → what to keep in mind when reading its scores (e.g. atp* is a magnitude). */
  notes: Record<string, string>;
}

/** Scores as run.json holds them: method → component → tensor. */
export type ScoresByMethod = Record<string, Partial<Record<string, ScoreTensor>>>;

/** Methods whose scores are magnitudes (|·|), not signed effects, with the note tables print. */
export const MAGNITUDE_METHODS: Record<string, string> = {
  'atp*': 'atp* scores are magnitudes (GradDrop averages |estimate|), not signed effects: compare them with |activation|',
};

/**
 * Pearson and Spearman correlation of paired samples under the rules above.
 * @param a [n] @param b [n]
 */
export function correlate(a: ArrayLike<number>, b: ArrayLike<number>): CorrelationCell {
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
  // Rounding can put |r| a hair above 1.
  const clamp = (r: number) => (Number.isFinite(r) ? Math.max(-1, Math.min(1, r)) : null);
  return { pearson: clamp(sampleCorrelation(x, y)), spearman: clamp(sampleRankCorrelation(x, y)), n };
}

/**
 * Correlate every method with `reference` on each component both have with the same axes and
 * shape. Without reference scores the table has no rows.
 */
export function correlationTable(scores: ScoresByMethod, reference = REFERENCE_METHOD): CorrelationTable {
  const allMethods = orderBy(Object.keys(scores), METHOD_ORDER);
  const components = orderBy(Object.values(scores).flatMap((c) => Object.keys(c)), COMPONENT_ORDER);
  const methods = allMethods.filter((m) => m !== reference);
  const order = { methods: allMethods, components };
  const notes = Object.fromEntries(allMethods.filter((m) => MAGNITUDE_METHODS[m]).map((m) => [m, MAGNITUDE_METHODS[m]!]));
  const ref = scores[reference];
  if (!ref) return { reference, methods: [], rows: [], order, notes };
  const rows: CorrelationTable['rows'] = [];
  for (const component of components) {
    const refT = ref[component];
    if (!refT) continue;
    const refFlat = flattenTensor(refT);
    const cells: Record<string, CorrelationCell> = {};
    for (const m of methods) {
      const t = scores[m]?.[component];
      if (!t) continue;
      if (t.shape.join() !== refT.shape.join() || t.axes.join() !== refT.axes.join()) {
        throw new Error(`${m}/${component}: shape [${t.shape.join(', ')}] (${t.axes.join(', ')}) differs from ${reference}'s [${refT.shape.join(', ')}] (${refT.axes.join(', ')})`);
      }
      cells[m] = correlate(refFlat, flattenTensor(t));
    }
    if (Object.keys(cells).length > 0) rows.push({ component, cells });
  }
  return { reference, methods: methods.filter((m) => rows.some((r) => r.cells[m])), rows, order, notes };
}

/** Format a table as text: rows = components, columns = methods, `r (ρ)`; `–` = undefined. */
export function formatCorrelationTable(table: CorrelationTable, title: string): string {
  const f = (v: number | null) => (v === null ? '–'.padStart(6) : v.toFixed(3).padStart(6));
  const head = ['component'.padEnd(12), ...table.methods.map((m) => `${m} r (ρ)`.padStart(17))].join(' ');
  const lines = table.rows.map((r) =>
    [r.component.padEnd(12), ...table.methods.map((m) => (r.cells[m] ? `${f(r.cells[m].pearson)} (${f(r.cells[m].spearman)})`.padStart(17) : '-'.padStart(17)))].join(' '),
  );
  const notes: string[] = [];
  if (table.rows.some((r) => Object.values(r.cells).some((c) => c.pearson === null))) notes.push('– : undefined (a constant method, or fewer than 3 finite cells)');
  for (const m of table.methods) if (MAGNITUDE_METHODS[m]) notes.push(MAGNITUDE_METHODS[m]);
  return [title, head, ...lines, ...notes.map((n) => `note: ${n}`)].join('\n');
}
