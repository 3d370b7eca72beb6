import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildGraph } from '../../src/circuits/graph.ts';
import { evaluateCircuits, faithfulnessCurve, logSpacedSizes, nodeCircuitFaithfulness, trapezoid, type Ablation } from '../../src/circuits/faithfulness.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';
import { cfg, tinyData, tinyModel } from './helpers.ts';
import { naiveGraphRun } from './naive-graph.ts';

describe('faithfulness', () => {
  const { model, sd } = tinyModel();
  const graph = buildGraph(cfg.nLayers, cfg.nHeads);
  const data = tinyData(3, 5, 17);
  const E = graph.nEdges;

  /** Naive batch-mean logit difference of a circuit under an ablation. */
  function naiveMetric(mask: Uint8Array, ablation: Ablation): number {
    const all = () => true;
    const corrupt = data.corrupt.map((t) => naiveGraphRun(cfg, sd, graph, t, all).outputs);
    const P = data.pos;
    const D = cfg.dModel;
    let ablated: Float64Array[][];
    if (ablation === 'corrupt') ablated = corrupt;
    else if (ablation === 'zero') ablated = corrupt.map((o) => o.map((x) => new Float64Array(x.length)));
    else {
      const mean = corrupt[0].map((_, u) => {
        const m = new Float64Array(P * D);
        for (const o of corrupt) for (let i = 0; i < P * D; i++) m[i] += o[u][i] / corrupt.length;
        return m;
      });
      ablated = corrupt.map(() => mean);
    }
    let s = 0;
    data.clean.forEach((t, b) => {
      const { lastLogits } = naiveGraphRun(cfg, sd, graph, t, (e) => mask[e] === 1, ablated[b]);
      s += lastLogits[data.answerIds[b]] - lastLogits[data.wrongIds[b]];
    });
    return s / data.clean.length;
  }

  it('the ablated forward equals a naive edge-by-edge masked implementation (all ablations)', () => {
    const r = mulberry32(3);
    const masks = [0.3, 0.6, 0.9].map((p) => Uint8Array.from({ length: E }, () => (r() < p ? 1 : 0)));
    for (const ablation of ['corrupt', 'mean', 'zero'] as const) {
      const ev = evaluateCircuits(model, graph, data, masks, { ablation, batch: 2 });
      masks.forEach((m, i) => expect(Math.abs(ev.values[i] - naiveMetric(m, ablation)), `${ablation} circuit ${i}`).toBeLessThan(1e-4));
      // the circuits really differ (the comparison is not vacuous)
      expect(Math.max(...ev.values) - Math.min(...ev.values)).toBeGreaterThan(1e-2);
      expect(Math.abs(ev.empty - naiveMetric(new Uint8Array(E), ablation)), `${ablation} empty`).toBeLessThan(1e-4);
    }
  });

  it('C = all edges gives the clean metric, C = ∅ the corrupt one (corrupt ablation): faithfulness 1 and 0', () => {
    const ld = (tokens: number[][]) => {
      const lg = model.forward(tokens);
      const a = lg.arraySync() as number[][][];
      lg.dispose();
      return a.reduce((s, row, b) => s + row[data.pos - 1][data.answerIds[b]] - row[data.pos - 1][data.wrongIds[b]], 0) / a.length;
    };
    const ev = evaluateCircuits(model, graph, data, [new Uint8Array(E).fill(1), new Uint8Array(E)]);
    expect(Math.abs(ev.full - ld(data.clean))).toBeLessThan(1e-4);
    expect(Math.abs(ev.empty - ld(data.corrupt))).toBeLessThan(1e-4);
    expect(Math.abs(ev.recovered[0] - 1)).toBeLessThan(1e-4);
    expect(Math.abs(ev.recovered[1])).toBeLessThan(1e-4);
  });

  it('curves run from 0 to 1 over log-spaced sizes; AUC is the trapezoid area', () => {
    const r = mulberry32(9);
    const scores = Float32Array.from({ length: E }, () => r() - 0.5);
    const c = faithfulnessCurve(model, graph, data, scores, { method: 'random' });
    expect(c.curve[0]).toEqual({ edges: 0, fraction_edges: 0, recovered: 0 });
    expect(c.curve.at(-1)).toEqual({ edges: E, fraction_edges: 1, recovered: 1 });
    expect(c.curve.length).toBe(logSpacedSizes(E).filter((n) => n < E).length + 2);
    const xs = c.curve.map((p) => p.fraction_edges);
    const ys = c.curve.map((p) => p.recovered);
    let area = 0;
    for (let i = 1; i < xs.length; i++) area += (xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1]) * 0.5;
    expect(c.auc).toBeCloseTo(area, 10);
    expect(trapezoid([0, 1], [0, 1])).toBe(0.5);
    expect(logSpacedSizes(1000, 4)).toEqual([1, 10, 100, 1000]);
  });

  it('node circuits: keeping every head is the full model; the head check equals the naive edge mask', () => {
    const allHeads: [number, number][] = [[0, 0], [0, 1], [1, 0], [1, 1]];
    expect(Math.abs(nodeCircuitFaithfulness(model, graph, data, allHeads).recovered - 1)).toBeLessThan(1e-4);
    const one = nodeCircuitFaithfulness(model, graph, data, [[1, 0]]);
    const mask = new Uint8Array(E).fill(1);
    for (const t of graph.targets) for (let u = 0; u < t.nUp; u++) if (['a0.h0', 'a0.h1', 'a1.h1'].includes(graph.nodes[u].id)) mask[t.edgeOffset + u] = 0;
    expect(Math.abs(one.value - naiveMetric(mask, 'corrupt'))).toBeLessThan(1e-4);
    expect(() => nodeCircuitFaithfulness(model, graph, data, [[5, 0]])).toThrow(/head 5.0 is not in the model/);
  });

  it('leaves no tensors behind', () => {
    const scores = Float32Array.from({ length: E }, (_, i) => i);
    faithfulnessCurve(model, graph, data, scores);
    const before = tf.memory().numTensors;
    for (const ablation of ['corrupt', 'mean', 'zero'] as const) faithfulnessCurve(model, graph, data, scores, { ablation, selection: 'greedy' });
    nodeCircuitFaithfulness(model, graph, data, [[0, 1]]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
