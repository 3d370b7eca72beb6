import { describe, expect, it } from 'vitest';
import { sampleCorrelation, sampleRankCorrelation } from 'simple-statistics';
import { correlate, correlationTable, correlationWarning, formatCorrelationTable, type CorrelationCell } from '../../src/patching/correlation.ts';
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

  it('returns null (not NaN), with the reason, for constant inputs or fewer than 3 pairs', () => {
    expect(correlate(Float64Array.from([1, 1, 1, 1]), Float64Array.from([1, 2, 3, 4]))).toMatchObject({ pearson: null, spearman: null, n: 4, kind: 'constant', reason: expect.stringMatching(/^reference scores are constant/) });
    expect(correlate(Float64Array.from([1, 2]), Float64Array.from([1, 2]))).toMatchObject({ pearson: null, spearman: null, n: 2, kind: 'few-cells', reason: expect.stringMatching(/fewer than 3 cells/) });
  });

  it('refuses constant, all-zero and near-zero-noise scores, stating the threshold', () => {
    const ref = [0.5, -0.2, 1.3, 0.1, 0.9, -0.7];
    const rand = mulberry32(5);
    const cases: [string, number[], string, RegExp][] = [
      ['constant', ref.map(() => 0.25), 'constant', /^scores are constant \(max \|score − mean\| ≤ 1e-5 × S, S = max \|score\| of both sides = 1\.30\)$/],
      ['all zero', ref.map(() => 0), 'all-zero', /^all scores are 0 \(max \|score\| ≤ 1e-5 × S, S = max \|score\| of both sides = 1\.30\)$/],
      // Rounding noise around 0 (the KL-noising symptom): 1e-12 of the scale, far under the 1e-5 threshold.
      ['1e-12 noise', ref.map(() => (rand() - 0.5) * 2e-12), 'all-zero', /^all scores are 0 /],
      // Noise around a constant: constant, not zero.
      ['constant + 1e-9 noise', ref.map(() => 3 + (rand() - 0.5) * 2e-9), 'constant', /^scores are constant /],
    ];
    for (const [what, scores, kind, reason] of cases) {
      const r = correlate(Float64Array.from(ref), Float64Array.from(scores), { zeroHint: undefined });
      expect(r, what).toMatchObject({ pearson: null, spearman: null, n: 6, kind });
      expect((r as Extract<CorrelationCell, { pearson: null }>).reason, what).toMatch(reason);
    }
    // The hint about gradients is appended to an all-zero reason when given.
    const hinted = correlate(Float64Array.from(ref), Float64Array.from(ref.map(() => 0)), { zeroHint: 'why' });
    expect(hinted.pearson === null && hinted.reason).toMatch(/: why$/);
    // A side that is constant in the reference is named.
    const constRef = correlate(Float64Array.from(ref.map(() => 2)), Float64Array.from(ref), { referenceName: 'activation' });
    expect(constRef.pearson === null && constRef.reason).toMatch(/^activation scores are constant/);
  });

  it('gives an ordinary pair the r and ρ of simple-statistics, and keeps small but real scores', () => {
    const x = [0.5, -0.2, 1.3, 0.1, 0.9, -0.7, 0.05];
    // Scores 1e-3 of the reference's size: well above the 1e-5 threshold, so they are correlated.
    for (const y of [[0.4, -0.1, 1.1, 0.3, 0.7, -0.9, 0.0], [4e-4, -1e-4, 1.1e-3, 3e-4, 7e-4, -9e-4, 0]]) {
      const r = correlate(Float64Array.from(x), Float64Array.from(y));
      expect(r.pearson!).toBeCloseTo(sampleCorrelation(x, y), 12);
      expect(r.spearman!).toBeCloseTo(sampleRankCorrelation(x, y), 12);
      expect(r.n).toBe(7);
    }
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
        // AtP* scores magnitudes: its column is against |activation|.
        const versus = m === 'atp*' ? ref.map(Math.abs) : ref;
        expect(row.cells[m]!.n).toBe(ref.length);
        expect(row.cells[m]!.pearson!).toBeCloseTo(naivePearson(versus, other), 10);
        expect(row.cells[m]!.spearman!).toBeCloseTo(naiveSpearman(versus, other), 10);
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
    expect(cells.relp).toMatchObject({ pearson: null, spearman: null, n: 4, kind: 'constant' });
    const text = formatCorrelationTable(table, 't');
    expect(text).toMatch(/resid_pre\s+0\.982 \( 1\.000\)\s+– \(constant\)\n/);
    expect(text).toMatch(/\nnote: – \(constant\) relp \(resid_pre\): no correlation: scores are constant \(max \|score − mean\| ≤ 1e-5 × S, S = max \|activation\| = 4\.00\)$/);
  });

  it('lists every method and component of a run in the one display order', () => {
    const run = syntheticRun({ nLayers: 2, nHeads: 2, nPos: 3, seed: 1, methods: ['relp', 'zz', 'activation', 'atp*', 'atp'] });
    const table = correlationTable(run.scores);
    expect(table.order.methods).toEqual(['activation', 'atp', 'atp*', 'relp', 'zz']);
    expect(table.order.components).toEqual(['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'z', 'z_pos', 'q', 'k', 'v', 'pattern']);
  });
});

describe('correlationTable: reports that cannot mislead', () => {
  const t = (values: number[]) => ({ axes: ['layer', 'pos'] as ['layer', 'pos'], shape: [1, values.length], values: [values] });
  const act = [0.8, -0.3, 0.05, 1.2, -0.6, 0.4];
  const rand = mulberry32(3);
  const noise = () => act.map(() => (rand() - 0.5) * 1e-9);

  it('gives AtP, AtP* and RelP no correlation under KL noising (the gradient vanishes at the clean run), whatever the noise', () => {
    // Noise 1e-3 of the scale would pass the all-zero test; the metric itself says the gradient is 0.
    const scores = { activation: { resid_post: t(act) }, atp: { resid_post: t(noise()) }, 'atp*': { resid_post: t(act.map(() => rand() * 1e-3)) }, relp: { resid_post: t(noise()) } };
    const table = correlationTable(scores, { metric: { name: 'neg_kl', clean: 0, corrupt: -1.2, direction: 'noising' } });
    for (const m of ['atp', 'atp*', 'relp']) {
      expect(table.rows[0]!.cells[m], m).toMatchObject({ pearson: null, spearman: null, n: 6, kind: 'vanishing-gradient', reason: expect.stringMatching(/gradient vanishes at the base run/) });
    }
    expect(table.noCorrelation).toHaveLength(1);
    expect(table.noCorrelation[0]!.where).toBe('atp, atp*, relp (resid_post)');
    const warning = correlationWarning(table)!;
    expect(warning).not.toContain('\n');
    expect(warning).toMatch(/^no correlation for atp, atp\*, relp \(resid_post\): the metric's gradient vanishes at the base run/);
    // Denoising with KL has a gradient (the base run is the corrupt one): ordinary numbers.
    const denoising = correlationTable({ activation: { c: t(act) }, atp: { c: t(act.map((v) => v + 0.1 * rand())) } }, { metric: { name: 'neg_kl', clean: 0, corrupt: -1.2, direction: 'denoising' } });
    expect(denoising.rows[0]!.cells.atp!.pearson).not.toBeNull();
    expect(correlationWarning(denoising)).toBeNull();
  });

  it('judges "all zero" against the metric scale S = max(|clean − corrupt|, max |activation|)', () => {
    // logit_diff: S = max(|3 − (−2)|, 1.2) = 5, so the threshold is 5e-5.
    const metric = { name: 'logit_diff', clean: 3, corrupt: -2, direction: 'denoising' };
    const below = act.map((v) => v * 4e-5); // max |score| 4.8e-5 ≤ 5e-5
    const above = act.map((v) => v * 6e-5); // 7.2e-5 > 5e-5: small but a real ranking
    const table = correlationTable({ activation: { c: t(act) }, atp: { c: t(below) }, relp: { c: t(above) } }, { metric });
    expect(table.scale).toBe(5);
    const atp = table.rows[0]!.cells.atp!;
    expect(atp).toMatchObject({ pearson: null, kind: 'all-zero' });
    expect(atp.pearson === null && atp.reason).toBe(
      "all scores are 0 (max |score| ≤ 1e-5 × S, S = max(|clean − corrupt|, max |activation|) = 5.00): a gradient estimate is all 0 when the metric's gradient vanishes at the base run, e.g. KL at the clean run",
    );
    expect(table.rows[0]!.cells.relp!.pearson!).toBeCloseTo(sampleCorrelation(act, above), 12);
    // A normalised metric is in units of clean − corrupt: its gap is 1, not |7 − 2|.
    const normalised = correlationTable({ activation: { c: t(act) } }, { metric: { name: 'normalised_logit_diff', clean: 7, corrupt: 2, direction: 'denoising' } });
    expect(normalised.scale).toBe(1.2);
    // Text: the cell says why in a short tag, the note below says it in full.
    const text = formatCorrelationTable(table, 't');
    expect(text).toMatch(/^c\s+– \(all 0\)\s+1\.000 \( 1\.000\)$/m);
    expect(text).toContain('\nnote: – (all 0) atp (c): no correlation: all scores are 0 (max |score| ≤ 1e-5 × S');
  });

  it('correlates AtP* (a magnitude) with |activation|, and says so in the header', () => {
    const magnitudes = act.map((v) => Math.abs(v) + 0.05 * rand());
    const table = correlationTable({ activation: { c: t(act) }, atp: { c: t(act) }, 'atp*': { c: t(magnitudes) } });
    const abs = act.map(Math.abs);
    const cell = table.rows[0]!.cells['atp*']!;
    expect(cell.pearson!).toBeCloseTo(sampleCorrelation(abs, magnitudes), 12);
    expect(cell.spearman!).toBeCloseTo(sampleRankCorrelation(abs, magnitudes), 12);
    // Not the signed correlation the table used to print.
    expect(Math.abs(cell.pearson! - sampleCorrelation(act, magnitudes))).toBeGreaterThan(0.1);
    expect(table.against).toEqual({ atp: 'activation', 'atp*': '|activation|' });
    const text = formatCorrelationTable(table, 't');
    expect(text.split('\n')[1]).toMatch(/^component\s+atp r \(ρ\) atp\* vs \|activation\| r \(ρ\)$/);
    expect(text).toContain('note: atp* scores are magnitudes (GradDrop averages |estimate|), so its column is correlated with |activation|');
    expect(text).not.toMatch(/compare them with/);
  });
});

describe('orderBy', () => {
  it('puts known names in order and unknown ones after, alphabetically, without duplicates', () => {
    expect(orderBy(['zeta', 'relp', 'alpha', 'atp', 'relp'], ['atp', 'relp'])).toEqual(['atp', 'relp', 'alpha', 'zeta']);
  });
});
