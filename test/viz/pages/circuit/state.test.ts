import { describe, expect, it } from 'vitest';
import { parseState, serializeState, sliderToThreshold, thresholdToSlider } from '../../../../src/viz/pages/circuit/state.js';
import { mulberry32 } from '../../../../src/models/state-dict.ts';

describe('URL state', () => {
  it('round-trips method, exact threshold and pins (ids with odd characters too)', () => {
    const rand = mulberry32(4);
    for (let k = 0; k < 200; k++) {
      const threshold = rand() * 10 ** (-8 + Math.floor(rand() * 10));
      const state = { method: ['relp', 'atp*', 'a b&c'][k % 3]!, threshold, pins: ['a3.h1', 'm2', 'x,y', 'é/%'].slice(0, k % 5) };
      expect(parseState(serializeState(state))).toEqual(state);
    }
  });

  it('ignores bad values instead of failing', () => {
    expect(parseState('?threshold=abc&pins=,,a1.h1,,a1.h1&method=')).toEqual({ method: null, threshold: null, pins: ['a1.h1'] });
    expect(parseState('?threshold=-1').threshold).toBeNull();
    expect(parseState('?pins=%E0%A4%A,m0').pins).toEqual(['%E0%A4%A', 'm0']);
    expect(parseState('')).toEqual({ method: null, threshold: null, pins: [] });
    expect(parseState('?threshold=1e-3').threshold).toBe(0.001);
  });

  it('maps the slider to a log-scale threshold and back', () => {
    const lo = 1e-6;
    const hi = 2.5;
    expect(sliderToThreshold(0, lo, hi, 1000)).toBeCloseTo(lo, 15);
    expect(sliderToThreshold(1000, lo, hi, 1000)).toBeCloseTo(hi, 12);
    // Halfway is the geometric mean.
    expect(sliderToThreshold(500, lo, hi, 1000)).toBeCloseTo(Math.sqrt(lo * hi), 12);
    let prev = 0;
    for (let p = 0; p <= 1000; p += 7) {
      const t = sliderToThreshold(p, lo, hi, 1000);
      expect(t).toBeGreaterThan(prev);
      prev = t;
      expect(thresholdToSlider(t, lo, hi, 1000)).toBe(p);
    }
    expect(thresholdToSlider(0, lo, hi, 1000)).toBe(0);
    expect(thresholdToSlider(100, lo, hi, 1000)).toBe(1000);
    expect(sliderToThreshold(3, 0, 0, 1000)).toBe(0);
  });
});
