import { describe, expect, it } from 'vitest';
import { cellLabel, flattenCells, sharedScale, tensorToHeatmap } from '../../../../src/viz/pages/run/data.js';
import { syntheticRun } from '../../../../src/viz/synthetic-run.ts';

const labels = ['<|endoftext|>', 'When', ' Mary', ' <b>&'];

describe('run page data', () => {
  it('turns a layer × pos tensor into a grid with token ticks and escaped hover text', () => {
    const t = { axes: ['layer', 'pos'] as ['layer', 'pos'], shape: [2, 4], values: [[1, -2, 3, null], [0.5, 0, -0.25, 4]] };
    const d = tensorToHeatmap(t, labels);
    expect(d.z).toEqual(t.values);
    expect(d.x).toEqual([0, 1, 2, 3]);
    expect(d.xText).toEqual(['&lt;|endofte…', 'When', ' Mary', ' &lt;b&gt;&amp;']);
    expect(d.yText).toEqual(['L0', 'L1']);
    expect(d.hover[1]![2]).toBe('layer 1 · pos 2 " Mary"');
    expect(d.hover[0]![3]).toBe('layer 0 · pos 3 " &lt;b&gt;&amp;"');
    expect(d.absMax).toBe(4);
    expect(d.signed).toBe(true);
  });

  it('stacks layer × head × pos into (layer·head) rows', () => {
    const L = 2, H = 3, T = 4;
    const values = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => Array.from({ length: T }, (_, p) => 100 * l + 10 * h + p)));
    const d = tensorToHeatmap({ axes: ['layer', 'head', 'pos'], shape: [L, H, T], values }, labels);
    expect(d.z).toHaveLength(L * H);
    expect(d.z[4]).toEqual([110, 111, 112, 113]); // layer 1, head 1
    expect(d.yTickVals).toEqual([0, 3]);
    expect(d.yText).toEqual(['L0', 'L1']);
    expect(d.hover[5]![1]).toBe('layer 1 · head 2 · pos 1 "When"');
    expect(d.signed).toBe(false);
  });

  it('flattens row-major like Array.flat, with one label per cell', () => {
    const run = syntheticRun({ nLayers: 2, nHeads: 2, nPos: 3, seed: 3 });
    for (const comp of ['resid_pre', 'z', 'z_pos']) {
      const t = run.scores.relp![comp]!;
      const f = flattenCells(t, run.labels);
      expect(f.values).toEqual((t.values as unknown[]).flat(3));
      expect(f.hover).toHaveLength(f.values.length);
    }
    expect(cellLabel(['layer', 'head'], [1, 0], [])).toBe('layer 1 · head 0');
  });

  it('gives the heatmaps of one component one colour scale: the largest |score| of any method', () => {
    const t = (values: (number | null)[][]) => ({ axes: ['layer', 'pos'] as ['layer', 'pos'], shape: [values.length, values[0]!.length], values });
    // Hand-picked: max |.| over both tensors is 7 (from the second); one negative value makes it signed.
    expect(sharedScale([t([[1, -2], [3, null]]), t([[7, 0], [0.5, 6]])])).toEqual({ absMax: 7, signed: true });
    expect(sharedScale([t([[1, 2]]), t([[0, 5]])])).toEqual({ absMax: 5, signed: false });
  });
});
