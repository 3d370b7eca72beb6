/**
 * Edge circuits on Gemma-2 (issue 21, item 3), in MIB's convention (src/circuits/post-norm.ts):
 * node outputs are contributions before the post-norms (head = z_h·W_O[h], MLP = its output
 * before ln2_post, input = the scaled embedding), and each target applies the post-norms to the
 * sums it sees. Independent checks on a random gemma2 checkpoint (2 layers, 4 heads, 2 kv heads,
 * attention and final soft-caps, sliding window), in both GQA conventions:
 * - all edges patched from the clean run give the clean logits, none the corrupt logits, and
 *   faithfulness of the full circuit is 1;
 * - EAP is the α → 0 limit of exact edge patching (central difference), edge by edge;
 * - Σ of EAP (EAP-RelP) over a node's outgoing edges = node-level AtP (RelP) of its pre-norm
 *   output from the model's own backward (the post-norm Jacobians, LN-rule included, add up);
 * - every method leaves no tensors behind; a streamed model is refused with a reason;
 * - `relp circuit --method eap,eap-relp,eap-ig,exact --gqa grouped|per-head` runs on the folder.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { buildGraph, edgeAt, headNode, mlpNode, type CircuitGraph, type GqaConvention } from '../../src/circuits/graph.ts';
import { logitDiff } from '../../src/patching/metrics.ts';
import { resolveRules, type RuleSet } from '../../src/rules/rules.ts';
import { graphForward } from '../../src/circuits/graph-forward.ts';
import { attributeEdges, exactEdgeScores, EDGE_METHODS } from '../../src/circuits/attribute.ts';
import { evaluateCircuits } from '../../src/circuits/faithfulness.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import { readCircuitFile } from '../../src/contracts/circuit.ts';
import type { HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { memoryBlockSource } from '../helpers/memory-block-source.ts';
import { randomPairs } from '../helpers/random-pairs.ts';
import { cleanupHFModels, hfModel, runCircuitCli, writeWordDataset } from './hf-models.ts';

afterAll(cleanupHFModels);

const VOCAB = 50;
const data = toPatchingData(randomPairs(3, 6, 17, VOCAB));
const OPTS: HFCheckpointOptions = { modelType: 'gemma2', seed: 71, std: 0.3, nLayers: 2, nHeads: 4, nKvHeads: 2, vocab: VOCAB };

const graphOf = (m: HookedTransformer, gqa: GqaConvention): CircuitGraph => buildGraph(m.cfg.nLayers, m.cfg.nHeads, { ...m.topology(), gqa });
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe.each(['grouped', 'per-head'] as const)('gemma2, --gqa %s', (gqa) => {
  it('all edges patched = clean logits, none = corrupt logits; the full circuit recovers 1', async () => {
    const { model } = await hfModel(OPTS);
    expect(model.cfg.postNorms).toBe(true);
    const graph = graphOf(model, gqa);
    const before = tf.memory().numTensors;
    const src = graphForward(model, graph, data.clean, { collectOutputs: true, lastPositionOnly: false });
    const [clean, corrupt] = [model.forward(data.clean), model.forward(data.corrupt)];
    const all = graphForward(model, graph, data.corrupt, { patch: { src: src.outputs!, coef: new Float32Array(graph.nEdges).fill(1) }, lastPositionOnly: false });
    const none = graphForward(model, graph, data.corrupt, { patch: { src: src.outputs!, coef: new Float32Array(graph.nEdges) }, lastPositionOnly: false });
    const [dSrc, dAll, dNone, gap] = [maxDiff(src.logits, clean), maxDiff(all.logits, clean), maxDiff(none.logits, corrupt), maxDiff(clean, corrupt)];
    console.log(`gemma2 ${gqa}: |unpatched − model| ${dSrc.toExponential(2)}, |all edges − clean| ${dAll.toExponential(2)}, |no edge − corrupt| ${dNone.toExponential(2)} (|clean − corrupt| ${gap.toFixed(3)})`);
    expect(dSrc).toBeLessThan(1e-5);
    expect(dAll).toBeLessThan(1e-4);
    expect(dNone).toBeLessThan(1e-5);
    expect(gap).toBeGreaterThan(1e-2); // the check has teeth
    tf.dispose([src.logits, src.outputs!, clean, corrupt, all.logits, none.logits]);
    expect(tf.memory().numTensors).toBe(before);
    const ev = evaluateCircuits(model, graph, data, [new Uint8Array(graph.nEdges).fill(1)]);
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(ev.recovered[0] - 1)).toBeLessThan(1e-3);
    model.dispose();
  });

  it('eap is the α → 0 limit of exact edge patching, edge by edge', async () => {
    const { model } = await hfModel(OPTS);
    const graph = graphOf(model, gqa);
    const eap = attributeEdges(model, graph, data, { method: 'eap' });
    const fd = exactEdgeScores(model, graph, data, { alpha: 3e-3 });
    const fd2 = exactEdgeScores(model, graph, data, { alpha: -3e-3 });
    const scale = Math.max(...Array.from(eap.scores, Math.abs));
    expect(scale).toBeGreaterThan(0.05); // not a vacuous comparison
    let worst = 0;
    let worstId = '';
    for (let e = 0; e < graph.nEdges; e++) {
      const central = (fd.scores[e] + fd2.scores[e]) / 2;
      const err = Math.abs(eap.scores[e] - central);
      if (err > worst) [worst, worstId] = [err, `${edgeAt(graph, e).source.id}->${edgeAt(graph, e).target.id}`];
      expect(err, `edge ${e} (${edgeAt(graph, e).source.id}->${edgeAt(graph, e).target.id})`).toBeLessThan(2e-3 * Math.max(1, scale));
    }
    console.log(`gemma2 ${gqa}: eap vs central difference of exact, worst |Δ| ${worst.toExponential(2)} at ${worstId} (scale ${scale.toFixed(3)})`);
    model.dispose();
  });

  it('every method runs and leaves no tensors behind', async () => {
    const { model } = await hfModel(OPTS);
    const graph = graphOf(model, gqa);
    const before = tf.memory().numTensors;
    for (const method of EDGE_METHODS) {
      const r = attributeEdges(model, graph, data, { method, igSteps: 2 });
      expect(tf.memory().numTensors, method).toBe(before);
      expect(r.scores.every(Number.isFinite), method).toBe(true);
      expect(Math.max(...Array.from(r.scores, Math.abs)), method).toBeGreaterThan(1e-3);
    }
    model.dispose();
  });
});

/**
 * Node-level AtP / RelP of each node's pre-norm output, from the model's own backward (no graph
 * code): the input at blocks.0.hook_resid_pre, head h at attn.hook_z (a_h = z_h·W_O[h] is linear
 * in z), MLP l at mlp.hook_post (its output before ln2_post is hook_post·W_out, linear). Raw
 * logit difference, batch mean. In graph node order.
 */
function nodeScores(model: HookedTransformer, rules: RuleSet | undefined): Float64Array {
  const { nLayers: L, nHeads: H } = model.cfg;
  const names = ['blocks.0.hook_resid_pre'];
  for (let l = 0; l < L; l++) names.push(`blocks.${l}.attn.hook_z`, `blocks.${l}.mlp.hook_post`);
  const metric = (logits: tf.Tensor3D) => tf.tidy(() => {
    const last = tf.squeeze(tf.slice(logits, [0, logits.shape[1] - 1, 0], [-1, 1, -1]), [1]) as tf.Tensor2D;
    const pick = (ids: number[]) => tf.sum(tf.mul(last, tf.oneHot(ids, last.shape[1])), 1);
    return tf.mean(tf.sub(pick(data.answerIds), pick(data.wrongIds))) as tf.Scalar;
  });
  const clean = model.runWithCache(data.clean, { names });
  const g = model.runWithCacheAndGrads(data.corrupt, metric, { names, rules });
  const s = new Float64Array(graphOf(model, 'grouped').nodes.length - 1);
  const dot = (n: string, axes: number[]) => tf.tidy(() => tf.sum(tf.mul(tf.sub(clean.cache[n], g.cache[n]), g.grads[n]), axes).dataSync());
  s[0] = dot(names[0], [0, 1, 2])[0];
  for (let l = 0; l < L; l++) {
    const z = dot(`blocks.${l}.attn.hook_z`, [0, 1, 3]); // [head]
    for (let h = 0; h < H; h++) s[headNode(H, l, h)] = z[h];
    s[mlpNode(H, l)] = dot(`blocks.${l}.mlp.hook_post`, [0, 1, 2])[0];
  }
  tf.dispose([clean.logits, g.logits, g.value, ...Object.values(clean.cache), ...Object.values(g.cache), ...Object.values(g.grads)]);
  return s;
}

describe('gemma2: edges add up to nodes', () => {
  it.each([
    { method: 'eap', rules: undefined },
    { method: 'eap-relp', rules: 'relp' },
  ] as const)('Σ of $method over each node\'s outgoing edges = node-level attribution of its pre-norm output, to 1e-5', async ({ method, rules }) => {
    const { model } = await hfModel(OPTS);
    for (const gqa of ['grouped', 'per-head'] as const) {
      const graph = graphOf(model, gqa);
      const e = attributeEdges(model, graph, data, { method, rules: 'relp', metric: logitDiff });
      const sums = new Float64Array(graph.nodes.length - 1);
      for (const t of graph.targets) for (let u = 0; u < t.nUp; u++) sums[u] += e.scores[t.edgeOffset + u];
      const want = nodeScores(model, rules ? resolveRules(rules) : undefined);
      const scale = Math.max(...want.map(Math.abs));
      expect(scale).toBeGreaterThan(0.1); // not a vacuous comparison
      const worst = Math.max(...want.map((w, u) => Math.abs(sums[u] - w) / scale));
      console.log(`gemma2 ${gqa} ${method}: worst |Σ edges − node| / max |node| = ${worst.toExponential(2)} (scale ${scale.toFixed(3)})`);
      expect(worst).toBeLessThan(1e-5);
    }
    model.dispose();
  });
});

describe('gemma2 on a streamed model', () => {
  it('is refused with a reason, before any compute and without leaking tensors', async () => {
    const { model: whole } = await hfModel(OPTS);
    const streamed = HookedTransformer.fromBlockSource(memoryBlockSource(whole.cfg, whole.canonicalWeights()));
    const graph = graphOf(whole, 'grouped');
    const before = tf.memory().numTensors;
    for (const method of EDGE_METHODS) expect(() => attributeEdges(streamed, graph, data, { method })).toThrow(/post-norm gains.*--no-stream-weights/);
    expect(() => evaluateCircuits(streamed, graph, data, [])).toThrow(/--no-stream-weights/);
    expect(tf.memory().numTensors).toBe(before);
    streamed.dispose();
    whole.dispose();
  });
});

describe('relp circuit on a gemma2 checkpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'relp-gemma2-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const dataset = writeWordDataset(dir, data.pairs);

  it.each(['grouped', 'per-head'] as const)('--gqa %s --method eap,eap-relp,eap-ig,exact writes a circuit', async (gqa) => {
    const out = join(dir, gqa);
    const { graph } = await runCircuitCli(OPTS, VOCAB + 2, dataset, out, 'eap,eap-relp,eap-ig,exact', gqa, ['--gqa', gqa]);
    const circuit = readCircuitFile(out);
    expect(circuit.metadata.gqa).toBe(gqa);
    expect(circuit.metadata.n_edges_total).toBe(graph.nEdges);
  });
});
