/**
 * The identity that ties edges to nodes (REFERENCE §10). The residual stream is a sum, so for
 * every source node u the EAP scores of u's outgoing edges (into every later q, k, v, MLP input
 * and the logits) add up to node-level AtP on u's output:
 *
 *   Σ_v Δa_u · ∂m/∂in_v = Δa_u · ∂m/∂a_u,
 *
 * and the same for EAP-RelP and RelP (the LRP-modified gradient is linear in the same way). The
 * node side comes from `attributionPatch`, an independent code path (the model's own forward and
 * hooks, no graph forward, no probes):
 * - the input node: `resid_pre` of layer 0 (embedding + positions), summed over positions;
 * - head h of layer l: `z` (AtP on z equals AtP on the head's output z·W_O[h], a linear map);
 * - MLP l: `mlp_out`, summed over positions.
 * Both sides use the raw logit difference (no normaliser that the two could measure apart);
 * attributionPatch reports base value + change, so the corrupt value is subtracted.
 *
 * Biases do not break the identity, so the random models keep theirs (GPT-2's b_O included):
 * a bias is the same on the clean and the corrupt run, so it is no part of any Δa_u, and a
 * constant added to the residual does not change which inputs a node output reaches.
 *
 * Models: GPT-2 (sequential), GPT-NeoX (parallel attention + MLP) and Llama with GQA (4/2).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildGraph, headNode, mlpNode, type CircuitGraph } from '../../src/circuits/graph.ts';
import { attributeEdges } from '../../src/circuits/attribute.ts';
import { attributionPatch, ATP, relpMethod } from '../../src/patching/attribution-patching.ts';
import { logitDiff } from '../../src/patching/metrics.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import type { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import type { HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { randomPairs } from '../helpers/random-pairs.ts';
import { cleanupHFModels, hfModel } from './hf-models.ts';

afterAll(cleanupHFModels);

const data = toPatchingData(randomPairs(3, 6, 23, 50));

const MODELS: { name: string; opts: HFCheckpointOptions }[] = [
  { name: 'gpt2', opts: { modelType: 'gpt2', seed: 51, std: 0.3, nHeads: 4, vocab: 50 } },
  { name: 'gpt_neox (parallel blocks)', opts: { modelType: 'gpt_neox', seed: 52, std: 0.3, nHeads: 4, vocab: 50 } },
  { name: 'llama (GQA 4/2)', opts: { modelType: 'llama', seed: 53, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: 50 } },
  { name: 'gpt_neox (sequential blocks)', opts: { modelType: 'gpt_neox', seed: 54, std: 0.3, nHeads: 4, vocab: 50, parallelResidual: false } },
  { name: 'qwen2 (GQA 4/2, q/k/v biases)', opts: { modelType: 'qwen2', seed: 55, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: 50 } },
];

/** Σ over u's outgoing edges, per source node (the logits node has none). */
function outgoingSums(graph: CircuitGraph, scores: Float32Array): Float64Array {
  const s = new Float64Array(graph.nodes.length - 1);
  for (const t of graph.targets) for (let u = 0; u < t.nUp; u++) s[u] += scores[t.edgeOffset + u];
  return s;
}

/** Node-level AtP / RelP change per source node, in graph node order (raw logit difference). */
function nodeScores(model: HookedTransformer, graph: CircuitGraph, method: typeof ATP): Float64Array {
  const r = attributionPatch(model, data, { components: 'resid_pre,z,mlp_out', methods: [method], metric: logitDiff });
  const base = r.baselines.corrupt; // reported values are base + change (denoising: the corrupt run)
  const g = r.scores[method.name];
  const perPos = (comp: 'resid_pre' | 'mlp_out', l: number) => (g[comp]!.values as number[][])[l].reduce((a, v) => a + (v - base), 0);
  const { nLayers: L, nHeads: H } = model.cfg;
  const s = new Float64Array(graph.nodes.length - 1);
  s[0] = perPos('resid_pre', 0);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) s[headNode(H, l, h)] = (g.z!.values as number[][])[l][h] - base;
    s[mlpNode(H, l)] = perPos('mlp_out', l);
  }
  return s;
}

describe.each(MODELS)('$name', ({ opts }) => {
  it.each([
    { edge: 'eap', node: ATP },
    { edge: 'eap-relp', node: relpMethod('relp') },
  ] as const)('Σ of $edge over each node\'s outgoing edges = node-level $node.name on its output, to 1e-5', async ({ edge, node }) => {
    const { model } = await hfModel(opts);
    const graph = buildGraph(model.cfg.nLayers, model.cfg.nHeads, model.topology());
    const e = attributeEdges(model, graph, data, { method: edge, rules: 'relp', metric: logitDiff });
    const sums = outgoingSums(graph, e.scores);
    const want = nodeScores(model, graph, node);
    const scale = Math.max(...want.map(Math.abs));
    expect(scale).toBeGreaterThan(0.1); // not a vacuous comparison
    let worst = 0;
    let worstNode = '';
    for (let u = 0; u < want.length; u++) {
      const err = Math.abs(sums[u] - want[u]) / scale;
      if (err > worst) [worst, worstNode] = [err, graph.nodes[u].id];
      expect(err, `${graph.nodes[u].id}: edges ${sums[u]} vs node ${want[u]}`).toBeLessThan(1e-5);
    }
    console.log(`${opts.modelType} ${edge} vs ${node.name}: worst |Σ edges − node| / max |node| = ${worst.toExponential(2)} (at ${worstNode}; scale ${scale.toFixed(3)})`);
    model.dispose();
  });
});
