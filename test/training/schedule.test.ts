import { describe, expect, it } from 'vitest';
import { learningRate } from '../../src/training/schedule.ts';

describe('learningRate', () => {
  const o = { peak: 1e-3, min: 1e-4, warmup: 300, total: 2500 };
  it('warms up linearly to the peak', () => {
    expect(learningRate(0, o)).toBeCloseTo(1e-3 / 300, 12);
    expect(learningRate(149, o)).toBeCloseTo(0.5e-3, 12);
    expect(learningRate(299, o)).toBeCloseTo(1e-3, 12);
  });
  it('decays along a cosine to the floor', () => {
    expect(learningRate(300, o)).toBeCloseTo(1e-3, 12);
    // Halfway through the decay the cosine term is 0: lr = (peak + min) / 2.
    expect(learningRate(300 + 1100, o)).toBeCloseTo(5.5e-4, 12);
    // A quarter of the way: min + (peak - min)(1 + cos(pi/4))/2.
    expect(learningRate(300 + 550, o)).toBeCloseTo(1e-4 + 9e-4 * (1 + Math.SQRT1_2) / 2, 12);
    expect(learningRate(2500, o)).toBeCloseTo(1e-4, 12);
    for (let s = 301; s < 2500; s += 97) expect(learningRate(s, o)).toBeLessThan(learningRate(s - 1, o));
  });
  it('rejects inconsistent settings', () => {
    expect(() => learningRate(0, { ...o, min: 2e-3 })).toThrow(/min/);
    expect(() => learningRate(0, { ...o, total: 0 })).toThrow(/total/);
  });
});
