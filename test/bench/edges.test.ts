/** The edge-scoring benchmark's plumbing on a tiny model (the timing itself is `npm run bench`'s job). */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { configFromHF } from '../../src/models/architectures/index.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { buildGraph } from '../../src/circuits/graph.ts';
import { formatEdgeReport, runEdgeBench } from '../../bench/edges.ts';

describe('runEdgeBench', () => {
  it('scores the whole graph with eap, eap-relp and eap-ig and reports edges per second', () => {
    const cfg = configFromHF({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 50 });
    const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 1, std: 0.3 }));
    const before = tf.memory().numTensors;
    const rows = runEdgeBench(model, 2, 5, () => undefined);
    expect(tf.memory().numTensors).toBe(before);
    const edges = buildGraph(2, 2, model.topology()).nEdges;
    expect(rows.map((r) => r.method)).toEqual(['eap', 'eap-relp', 'eap-ig']);
    for (const r of rows) {
      expect(r.edges).toBe(edges);
      expect(r.edges_per_s).toBeCloseTo(edges / r.seconds, 6);
    }
    expect(formatEdgeReport(rows, 2, 5)).toMatch(/eap-ig\s+\d+\.\d+\s+\d+/);
    model.dispose();
  });
});
