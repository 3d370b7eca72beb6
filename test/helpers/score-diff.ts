/** Comparing two sweeps' score grids in tests. */
import { expect } from 'vitest';
import { flattenTensor } from '../../src/contracts/score-tensor.ts';
import type { MethodScores } from '../../src/patching/score-grid.ts';

/** Largest |a − b| over every cell of every component of `a` (each component must have as many cells in `b`). */
export function maxDiff(a: MethodScores, b: MethodScores): number {
  let m = 0;
  for (const c of Object.keys(a) as (keyof MethodScores)[]) {
    const x = flattenTensor(a[c]!);
    const y = flattenTensor(b[c]!);
    expect(y.length).toBe(x.length);
    x.forEach((v, i) => (m = Math.max(m, Math.abs(v - y[i]))));
  }
  return m;
}
