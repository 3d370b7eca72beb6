/**
 * EAP = exact edge patching on a linearised model, on every architecture (issue 21, must-show).
 *
 * With every non-linearity frozen at the corrupt run (norm scales, per-head LN1 scales and, with
 * post-norms, each reading target's post-norm scale; the MLP non-linearity, gated MLPs by freezing
 * act(gate); attention patterns: test/circuits/helpers.ts, test/helpers/freeze.ts) the graph
 * forward is affine in every edge's value, so EAP's first-order estimate is exact: for every edge,
 *   EAP(u → t) = m(corrupt with u → t patched) − m(corrupt).
 * Checks, per architecture:
 * - the frozen model is affine (independently of EAP): exact patching of half the difference
 *   (α = ½, rescaled by 1/α) gives the same scores as α = 1;
 * - EAP equals exact patching to 1e-5 relative to the largest score, edge by edge;
 * - the comparison is not vacuous: the largest score is > 0.05 and v edges carry signal.
 * Gemma-2's final logit soft-cap, cap·tanh(logits/cap), follows the unembedding with no hook after
 * it, so no hook can freeze it: the Gemma-2 checkpoint here has final_logit_softcapping off (its
 * attention soft-cap stays; it only feeds the frozen pattern).
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildGraph, edgeAt, type GqaConvention } from '../../src/circuits/graph.ts';
import { attributeEdges, exactEdgeScores } from '../../src/circuits/attribute.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import type { HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { randomPairs } from '../helpers/random-pairs.ts';
import { freezeAtCorrupt } from './helpers.ts';
import { cleanupHFModels, hfModel } from './hf-models.ts';

afterAll(cleanupHFModels);

const VOCAB = 50;
const data = toPatchingData(randomPairs(3, 6, 29, VOCAB));

const CASES: { name: string; opts: HFCheckpointOptions; gqa: GqaConvention }[] = [
  { name: 'gpt2', opts: { modelType: 'gpt2', seed: 81, std: 0.3, nHeads: 4, vocab: VOCAB }, gqa: 'grouped' },
  { name: 'gpt_neox (parallel blocks)', opts: { modelType: 'gpt_neox', seed: 82, std: 0.3, nHeads: 4, vocab: VOCAB }, gqa: 'grouped' },
  { name: 'llama (GQA 4/2), grouped', opts: { modelType: 'llama', seed: 83, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: VOCAB }, gqa: 'grouped' },
  { name: 'llama (GQA 4/2), per-head', opts: { modelType: 'llama', seed: 83, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: VOCAB }, gqa: 'per-head' },
  { name: 'qwen2 (GQA 4/2, q/k/v biases)', opts: { modelType: 'qwen2', seed: 84, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: VOCAB }, gqa: 'grouped' },
  { name: 'gemma2 (post-norms, GQA 4/2), grouped', opts: { modelType: 'gemma2', seed: 85, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: VOCAB, finalSoftcap: null }, gqa: 'grouped' },
  { name: 'gemma2 (post-norms, GQA 4/2), per-head', opts: { modelType: 'gemma2', seed: 85, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: VOCAB, finalSoftcap: null }, gqa: 'per-head' },
];

/** max_e |a_e − b_e| / max_e |b_e|, and where. */
function relErr(a: Float32Array, b: Float32Array): { err: number; at: number; scale: number } {
  let d = 0;
  let at = 0;
  let m = 0;
  for (let e = 0; e < b.length; e++) {
    if (Math.abs(a[e] - b[e]) > d) [d, at] = [Math.abs(a[e] - b[e]), e];
    m = Math.max(m, Math.abs(b[e]));
  }
  return { err: d / m, at, scale: m };
}

describe.each(CASES)('$name', ({ name, opts, gqa }) => {
  it('the frozen model is affine, and eap = exact edge patching to 1e-5 of the largest score', async () => {
    const { model } = await hfModel(opts);
    const graph = buildGraph(model.cfg.nLayers, model.cfg.nHeads, { ...model.topology(), gqa });
    const before = tf.memory().numTensors;
    const f = freezeAtCorrupt(model, data);
    const o = { hooks: f.hooks, graphHooks: f.graphHooks };
    const eap = attributeEdges(model, graph, data, { method: 'eap', ...o });
    const exact = exactEdgeScores(model, graph, data, o);
    const half = exactEdgeScores(model, graph, data, { ...o, alpha: 0.5 });
    f.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const affine = relErr(half.scores, exact.scores);
    const r = relErr(eap.scores, exact.scores);
    const vMax = Math.max(...graph.targets.filter((t) => t.input === 'v').flatMap((t) => Array.from(exact.scores.subarray(t.edgeOffset, t.edgeOffset + t.nUp), Math.abs)));
    console.log(`${name}: ${graph.nEdges} edges, scale ${r.scale.toFixed(3)}; |exact(α=½) − exact| / scale ${affine.err.toExponential(2)}; |eap − exact| / scale ${r.err.toExponential(2)} at ${edgeAt(graph, r.at).source.id}->${edgeAt(graph, r.at).target.id}`);
    expect(r.scale).toBeGreaterThan(0.05); // not a vacuous comparison
    expect(vMax).toBeGreaterThan(1e-3); // v edges carry signal (q and k do not: patterns are frozen)
    expect(affine.err).toBeLessThan(1e-5);
    expect(r.err).toBeLessThan(1e-5);
    model.dispose();
  });
});
