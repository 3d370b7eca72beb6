import { describe, expect, it } from 'vitest';
import { buildGraph, edgeIndex } from '../../src/circuits/graph.ts';
import { gpt2SmallIoiHeads, headRocAuc, headScores, patchingReferenceHeads, rocAuc } from '../../src/circuits/reference.ts';
import { tinyData, tinyModel } from './helpers.ts';

/** AUC by brute force over all positive/negative pairs (ties count ½). */
function pairAuc(s: number[], y: boolean[]): number {
  let n = 0;
  let w = 0;
  s.forEach((a, i) => s.forEach((b, j) => {
    if (y[i] && !y[j]) {
      n++;
      w += a > b ? 1 : a === b ? 0.5 : 0;
    }
  }));
  return w / n;
}

describe('reference comparison', () => {
  it('ROC AUC equals the pairwise probability, ties included', () => {
    const s = [0.1, 0.4, 0.4, 0.8, 0.2, 0.4, 0.9];
    const y = [false, true, false, true, false, true, false];
    expect(rocAuc(s, y)).toBeCloseTo(pairAuc(s, y), 12);
    expect(rocAuc([1, 2, 3], [false, false, true])).toBe(1);
    expect(() => rocAuc([1, 2], [true, true])).toThrow(/both classes/);
  });

  it('ships the 26 GPT-2 small IOI heads from REFERENCE §2', () => {
    const heads = gpt2SmallIoiHeads();
    expect(heads.length).toBe(26);
    expect(heads).toContainEqual([9, 9]);
    expect(heads).toContainEqual([4, 11]);
  });

  it('head scores sum |edge scores| in and out; AUC 1 when the reference heads carry the scores', () => {
    const g = buildGraph(2, 2);
    const s = new Float32Array(g.nEdges);
    s[edgeIndex(g, 'a1.h0', 'logits')] = -2;
    s[edgeIndex(g, 'input', 'a1.h0<q>')] = 1;
    s[edgeIndex(g, 'a0.h1', 'm0')] = 0.5;
    const hs = headScores(g, s);
    expect(hs).toEqual([[0, 0.5], [3, 0]]);
    expect(headRocAuc(g, s, [[1, 0]])).toBe(1);
  });

  it('reference heads from activation patching of z are the largest |effects|', async () => {
    const { model } = tinyModel();
    const r = await patchingReferenceHeads(model, tinyData(), { topK: 2 });
    const flat = r.scores.flatMap((row, l) => row.map((v, h) => ({ l, h, a: Math.abs(v) }))).sort((a, b) => b.a - a.a);
    expect(r.heads).toEqual(flat.slice(0, 2).map((c) => [c.l, c.h]));
    model.dispose();
  });
});
