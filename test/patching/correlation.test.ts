import { describe, expect, it } from 'vitest';
import { correlate, correlationTable, formatCorrelationTable } from '../../src/patching/correlation.ts';
import { orderBy } from '../../src/patching/names.ts';
import { syntheticRun } from '../../src/viz/synthetic-run.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';

// Independent reference implementations (textbook formulas, no shared code with the module).
function naivePearson(x: number[], y: number[]): number {
  const n = x.length;
  let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (let i = 0; i < n; i++) {
    sx += x[i]!; sy += y[i]!; sxx += x[i]! * x[i]!; syy += y[i]! * y[i]!; sxy += x[i]! * y[i]!;
  }
  return (n * sxy - sx * sy) / Math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
}
// Average ranks by counting (O(n²)): rank = #smaller + (#equal + 1) / 2, 1-based.
function naiveRanks(v: number[]): number[] {
  return v.map((a) => v.filter((b) => b < a).length + (v.filter((b) => b === a).length + 1) / 2);
}
const naiveSpearman = (x: number[], y: number[]) => naivePearson(naiveRanks(x), naiveRanks(y));

describe('correlate', () => {
  it('matches textbook Pearson and Spearman (with ties) on random data', () => {
    const rand = mulberry32(11);
    for (let trial = 0; trial < 20; trial++) {
      const n = 5 + Math.floor(rand() * 60);
      // Rounded values produce ties, which Spearman must average.
      const x = Array.from({ length: n }, () => Math.round(rand() * 10) / 2);
      const y = x.map((v) => Math.round((v + rand() * 3 - 1.5) * 2) / 2);
      const r = correlate(Float64Array.from(x), Float64Array.from(y));
      expect(r.n).toBe(n);
      expect(r.pearson!).toBeCloseTo(naivePearson(x, y), 10);
      expect(r.spearman!).toBeCloseTo(naiveSpearman(x, y), 10);
    }
  });

  it('skips pairs where either side is missing (NaN)', () => {
    const x = [1, 2, NaN, 4, 5, 6];
    const y = [2, 1, 7, NaN, 6, 5];
    const r = correlate(Float64Array.from(x), Float64Array.from(y));
    expect(r.n).toBe(4);
    expect(r.pearson!).toBeCloseTo(naivePearson([1, 2, 5, 6], [2, 1, 6, 5]), 12);
  });

  it('returns null (not NaN) for constant inputs or fewer than 3 pairs', () => {
    expect(correlate(Float64Array.from([1, 1, 1, 1]), Float64Array.from([1, 2, 3, 4]))).toEqual({ pearson: null, spearman: null, n: 4 });
    expect(correlate(Float64Array.from([1, 2]), Float64Array.from([1, 2]))).toEqual({ pearson: null, spearman: null, n: 2 });
  });

  it('rejects arrays of different lengths', () => {
    expect(() => correlate(new Float64Array(3), new Float64Array(4))).toThrow(/lengths differ/);
  });
});

describe('correlationTable', () => {
  it('compares every method with activation per component, recomputed naively', () => {
    const run = syntheticRun({ nLayers: 3, nHeads: 2, nPos: 5, seed: 9 });
    const table = correlationTable(run.scores);
    expect(table.reference).toBe('activation');
    expect(table.methods).toEqual(['atp', 'atp*', 'relp']);
    // q/k/v/pattern have no activation scores, so no rows.
    expect(table.rows.map((r) => r.component)).toEqual(['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'z', 'z_pos']);
    for (const row of table.rows) {
      const ref = (run.scores.activation![row.component]!.values as unknown[]).flat(3) as number[];
      for (const m of table.methods) {
        const other = (run.scores[m]![row.component]!.values as unknown[]).flat(3) as number[];
        expect(row.cells[m]!.n).toBe(ref.length);
        expect(row.cells[m]!.pearson!).toBeCloseTo(naivePearson(ref, other), 10);
        expect(row.cells[m]!.spearman!).toBeCloseTo(naiveSpearman(ref, other), 10);
      }
    }
  });

  it('is empty when there are no activation-patching scores', () => {
    const run = syntheticRun({ nLayers: 2, nHeads: 2, nPos: 3, methods: ['atp', 'relp'] });
    expect(correlationTable(run.scores).rows).toEqual([]);
  });

  it('refuses a component whose shape differs from the reference (the run-file contract rejects such files)', () => {
    const run = syntheticRun({ nLayers: 2, nHeads: 2, nPos: 3, seed: 1 });
    run.scores.relp!.z = { axes: ['layer', 'head'], shape: [2, 1], values: [[1], [2]] };
    expect(() => correlationTable(run.scores)).toThrow(/relp\/z: shape \[2, 1\]/);
  });

  it('leaves out non-finite cells pairwise and reports a constant method as undefined, the same in the table and its text', () => {
    // Hand-computed: activation [1, 2, 3, 4] vs atp [2, 4, 5, 4] with cell 3 missing (null) in atp:
    // pairs (1,2), (2,4), (3,5): x̄ = 2, ȳ = 11/3; Sxy = (−1)(−5/3) + 0 + (1)(4/3) = 3;
    // Sxx = 2, Syy = 25/9 + 1/9 + 16/9 = 42/9 → r = 3 / sqrt(2 · 42/9) = 3 / sqrt(84/9) = 9 / sqrt(84).
    const t = (values: (number | null)[]) => ({ axes: ['layer', 'pos'] as ['layer', 'pos'], shape: [1, 4], values: [values] });
    const table = correlationTable({ activation: { resid_pre: t([1, 2, 3, 4]) }, atp: { resid_pre: t([2, 4, 5, null]) }, relp: { resid_pre: t([7, 7, 7, 7]) } });
    const cells = table.rows[0]!.cells;
    expect(cells.atp!.n).toBe(3);
    expect(cells.atp!.pearson!).toBeCloseTo(9 / Math.sqrt(84), 12);
    expect(cells.atp!.spearman!).toBeCloseTo(1, 12); // ranks (1,2,3) vs (1,2,3)
    expect(cells.relp).toEqual({ pearson: null, spearman: null, n: 4 });
    const text = formatCorrelationTable(table, 't');
    expect(text).toMatch(/resid_pre\s+0\.982 \( 1\.000\)\s+– \(\s+–\)/);
    expect(text).toMatch(/note: – : undefined/);
  });

  it('lists every method and component of a run in the one display order', () => {
    const run = syntheticRun({ nLayers: 2, nHeads: 2, nPos: 3, seed: 1, methods: ['relp', 'zz', 'activation', 'atp*', 'atp'] });
    const table = correlationTable(run.scores);
    expect(table.order.methods).toEqual(['activation', 'atp', 'atp*', 'relp', 'zz']);
    expect(table.order.components).toEqual(['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'z', 'z_pos', 'q', 'k', 'v', 'pattern']);
  });
});

describe('orderBy', () => {
  it('puts known names in order and unknown ones after, alphabetically, without duplicates', () => {
    expect(orderBy(['zeta', 'relp', 'alpha', 'atp', 'relp'], ['atp', 'relp'])).toEqual(['atp', 'relp', 'alpha', 'zeta']);
  });
});
