import { describe, expect, it } from 'vitest';
import { correlate, correlationTable, orderBy } from '../../src/viz/correlations.ts';
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
    const table = correlationTable(run);
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
    expect(correlationTable(run).rows).toEqual([]);
  });

  it('skips components whose shapes differ from the reference', () => {
    const run = syntheticRun({ nLayers: 2, nHeads: 2, nPos: 3, seed: 1 });
    run.scores.relp!.z = { axes: ['layer', 'head'], shape: [2, 1], values: [[1], [2]] };
    const z = correlationTable(run).rows.find((r) => r.component === 'z')!;
    expect(Object.keys(z.cells).sort()).toEqual(['atp', 'atp*']);
  });
});

describe('orderBy', () => {
  it('puts known names in order and unknown ones after, alphabetically, without duplicates', () => {
    expect(orderBy(['zeta', 'relp', 'alpha', 'atp', 'relp'], ['atp', 'relp'])).toEqual(['atp', 'relp', 'alpha', 'zeta']);
  });
});
