/**
 * The `per-head` GQA convention (issue 21): every query head has its own q, k and v targets
 * `a{l}.h{h}<k|v>`, each reading the full residual stream and feeding only that head's attention
 * (TransformerLens `ungroup_grouped_query_attention`, MIB). Independent checks on random Llama
 * and Qwen2 models with 4 query heads and 2 kv heads:
 * - per-head scores on the GQA model = scores on the same model written out as MHA (each kv head's
 *   W_K, W_V and biases repeated per query head: TransformerLens's ungrouping, built outside
 *   src/circuits), for eap, eap-relp, eap-ig and exact edge patching;
 * - per-head EAP is the α → 0 limit of per-head exact edge patching (central difference), edge by
 *   edge, and equals exact per-head patching on the model frozen to be affine around the corrupt run;
 * - the sum over a kv head's group of per-head k (v) edge scores equals the grouped k (v) edge
 *   score (gradient methods are linear in the gradient);
 * - all edges patched from the clean run give the clean logits, none the corrupt logits;
 * - with n_kv_heads = n_heads both conventions are the same graph and give the same scores;
 * - every call leaves no tensors behind;
 * - a streamed model (block-wise backward) gives the whole model's per-head scores;
 * - `relp circuit --gqa grouped|per-head --method eap,eap-relp,eap-ig,exact` runs on the checkpoint.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { memoryBlockSource } from '../helpers/memory-block-source.ts';
import type { Hook } from '../../src/hooks/hook-point.ts';
import { buildGraph, edgeAt, type CircuitGraph, type GqaConvention } from '../../src/circuits/graph.ts';
import { graphForward } from '../../src/circuits/graph-forward.ts';
import { attributeEdges, exactEdgeScores, EDGE_METHODS } from '../../src/circuits/attribute.ts';
import { evaluateCircuits } from '../../src/circuits/faithfulness.ts';
import { toPatchingData, type PatchingData } from '../../src/patching/data.ts';
import type { HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { randomPairs } from '../helpers/random-pairs.ts';
import { freezeAtCorrupt } from '../helpers/freeze.ts';
import { readCircuitFile } from '../../src/contracts/circuit.ts';
import { asMha, cleanupHFModels, hfModel, relDiff, runCircuitCli, writeWordDataset } from './hf-models.ts';

afterAll(cleanupHFModels);

const VOCAB = 50;
const data = toPatchingData(randomPairs(3, 6, 17, VOCAB));

const graphOf = (m: HookedTransformer, gqa: GqaConvention): CircuitGraph => buildGraph(m.cfg.nLayers, m.cfg.nHeads, { ...m.topology(), gqa });

/** Hooks freezing every norm scale, MLP ratio and pattern at the corrupt run (per-head LN1 scales as graph hooks). */
function frozenAffine(model: HookedTransformer, d: PatchingData): { hooks: Hook[]; graphHooks: Hook[]; dispose: () => void } {
  const f = freezeAtCorrupt(model, d, { ln1: false });
  const B = d.corrupt.length;
  const graphHooks: Hook[] = [];
  for (let l = 0; l < model.cfg.nLayers; l++) {
    const s = f.cache[`blocks.${l}.ln1.hook_scale`]; // [B, p, 1]
    for (const i of ['q', 'k', 'v']) graphHooks.push({ name: `blocks.${l}.ln1.hook_scale_${i}`, fn: (x) => tf.tile(tf.expandDims(s, 2), [x.shape[0] / B, 1, x.shape[2] as number, 1]) });
  }
  return { hooks: f.hooks, graphHooks, dispose: f.dispose };
}

const MODELS: { name: string; opts: HFCheckpointOptions }[] = [
  { name: 'llama (GQA 4/2)', opts: { modelType: 'llama', seed: 41, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: VOCAB } },
  { name: 'qwen2 (GQA 4/2, q/k/v biases)', opts: { modelType: 'qwen2', seed: 46, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: VOCAB } },
];

describe.each(MODELS)('per-head GQA: $name', ({ opts }) => {
  it('the graph has per-query-head k / v targets; all edges patched = clean logits, none = corrupt logits', async () => {
    const { model } = await hfModel(opts);
    const graph = graphOf(model, 'per-head');
    expect(graph.nKvTargets).toBe(4);
    expect(graph.targets.slice(4, 12).map((t) => t.id)).toEqual(['a0.h0<k>', 'a0.h1<k>', 'a0.h2<k>', 'a0.h3<k>', 'a0.h0<v>', 'a0.h1<v>', 'a0.h2<v>', 'a0.h3<v>']);
    expect(graph.nEdges).toBe(buildGraph(model.cfg.nLayers, 4).nEdges); // the MHA graph's count
    const before = tf.memory().numTensors;
    const src = graphForward(model, graph, data.clean, { collectOutputs: true, lastPositionOnly: false });
    const [clean, corrupt] = [model.forward(data.clean), model.forward(data.corrupt)];
    const all = graphForward(model, graph, data.corrupt, { patch: { src: src.outputs!, coef: new Float32Array(graph.nEdges).fill(1) }, lastPositionOnly: false });
    const none = graphForward(model, graph, data.corrupt, { patch: { src: src.outputs!, coef: new Float32Array(graph.nEdges) }, lastPositionOnly: false });
    const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
    const [dAll, dNone] = [maxDiff(all.logits, clean), maxDiff(none.logits, corrupt)];
    console.log(`${opts.modelType} per-head: |all edges − clean| ${dAll.toExponential(2)}, |no edge − corrupt| ${dNone.toExponential(2)}`);
    expect(dAll).toBeLessThan(1e-4);
    expect(dNone).toBeLessThan(1e-5);
    expect(maxDiff(clean, corrupt)).toBeGreaterThan(1e-2); // the check has teeth
    tf.dispose([src.logits, src.outputs!, clean, corrupt, all.logits, none.logits]);
    expect(tf.memory().numTensors).toBe(before);
    const ev = evaluateCircuits(model, graph, data, [new Uint8Array(graph.nEdges).fill(1)]);
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(ev.recovered[0] - 1)).toBeLessThan(1e-3);
    model.dispose();
  });

  it('per-head scores = the scores of the model ungrouped to MHA (W_K, W_V repeated), every method, no tensors left', async () => {
    const { model } = await hfModel(opts);
    const mha = asMha(model);
    const graph = graphOf(model, 'per-head');
    const mgraph = graphOf(mha, 'grouped');
    expect(graph.targets.map((t) => t.id)).toEqual(mgraph.targets.map((t) => t.id));
    const before = tf.memory().numTensors;
    for (const method of EDGE_METHODS) {
      const a = attributeEdges(model, graph, data, { method, igSteps: 3 });
      expect(tf.memory().numTensors, method).toBe(before);
      const b = attributeEdges(mha, mgraph, data, { method, igSteps: 3 });
      expect(Math.max(...Array.from(b.scores, Math.abs))).toBeGreaterThan(1e-2);
      const d = relDiff(a.scores, b.scores);
      console.log(`${opts.modelType} ${method}: per-head vs ungrouped MHA, max |Δ| / max |score| = ${d.toExponential(2)}`);
      expect(d, method).toBeLessThan(1e-5);
    }
    mha.dispose();
    model.dispose();
  });

  it('per-head eap is the α → 0 limit of per-head exact edge patching, edge by edge (k / v per query head included)', async () => {
    const { model } = await hfModel(opts);
    const graph = graphOf(model, 'per-head');
    const eap = attributeEdges(model, graph, data, { method: 'eap' });
    const fd = exactEdgeScores(model, graph, data, { alpha: 3e-3 });
    const fd2 = exactEdgeScores(model, graph, data, { alpha: -3e-3 });
    const scale = Math.max(...Array.from(eap.scores, Math.abs));
    expect(scale).toBeGreaterThan(0.05);
    let worst = 0;
    let kvMax = 0;
    for (let e = 0; e < graph.nEdges; e++) {
      const central = (fd.scores[e] + fd2.scores[e]) / 2;
      worst = Math.max(worst, Math.abs(eap.scores[e] - central));
      const t = edgeAt(graph, e).target;
      if (t.input === 'k' || t.input === 'v') kvMax = Math.max(kvMax, Math.abs(central));
      expect(Math.abs(eap.scores[e] - central), `edge ${e} (${t.id})`).toBeLessThan(2e-3 * Math.max(1, scale));
    }
    expect(kvMax).toBeGreaterThan(1e-3); // per-head k / v edges move the metric
    console.log(`${opts.modelType} per-head: eap vs central difference of exact, worst |Δ| ${worst.toExponential(2)} (scale ${scale.toFixed(3)})`);
    model.dispose();
  });

  it('per-head eap = per-head exact edge patching on the model frozen to be affine', async () => {
    const { model } = await hfModel(opts);
    const graph = graphOf(model, 'per-head');
    const f = frozenAffine(model, data);
    const eap = attributeEdges(model, graph, data, { method: 'eap', hooks: f.hooks, graphHooks: f.graphHooks });
    const exact = exactEdgeScores(model, graph, data, { hooks: f.hooks, graphHooks: f.graphHooks });
    f.dispose();
    const scale = Math.max(...Array.from(exact.scores, Math.abs));
    expect(scale).toBeGreaterThan(0.05);
    let worst = 0;
    for (let e = 0; e < graph.nEdges; e++) {
      worst = Math.max(worst, Math.abs(eap.scores[e] - exact.scores[e]));
      expect(Math.abs(eap.scores[e] - exact.scores[e]) / scale, `edge ${e} (${edgeAt(graph, e).target.id})`).toBeLessThan(1e-5);
    }
    // v edges per query head carry signal in the frozen model (q and k do not: patterns are frozen).
    const vMax = Math.max(...graph.targets.filter((t) => t.input === 'v').flatMap((t) => Array.from(exact.scores.subarray(t.edgeOffset, t.edgeOffset + t.nUp), Math.abs)));
    expect(vMax).toBeGreaterThan(1e-3);
    console.log(`${opts.modelType} per-head frozen: eap vs exact, worst |Δ| ${worst.toExponential(2)} (scale ${scale.toFixed(3)})`);
    model.dispose();
  });

  it('Σ over a kv head\'s group of per-head k / v edge scores = the grouped k / v edge score; q, MLP and logits edges agree', async () => {
    const { model } = await hfModel(opts);
    const per = graphOf(model, 'per-head');
    const grp = graphOf(model, 'grouped');
    const g = model.cfg.nHeads / model.cfg.nKvHeads;
    for (const method of ['eap', 'eap-relp', 'eap-ig'] as const) {
      const a = attributeEdges(model, grp, data, { method, igSteps: 3 });
      const b = attributeEdges(model, per, data, { method, igSteps: 3 });
      const scale = Math.max(...Array.from(a.scores, Math.abs));
      let worst = 0;
      for (const t of grp.targets) {
        const kv = /^a(\d+)\.kv(\d+)<([kv])>$/.exec(t.id);
        const ids = kv ? Array.from({ length: g }, (_, i) => `a${kv[1]}.h${Number(kv[2]) * g + i}<${kv[3]}>`) : [t.id];
        const ms = ids.map((id) => per.targets.find((x) => x.id === id)!);
        for (let u = 0; u < t.nUp; u++) {
          const sum = ms.reduce((s, m) => s + b.scores[m.edgeOffset + u], 0);
          worst = Math.max(worst, Math.abs(a.scores[t.edgeOffset + u] - sum) / scale);
        }
      }
      console.log(`${opts.modelType} ${method}: grouped vs Σ per-head over each group, worst relative difference ${worst.toExponential(2)}`);
      expect(worst, method).toBeLessThan(1e-5);
    }
    model.dispose();
  });
});

describe('per-head GQA on a streamed model', () => {
  it.each(['eap-ig', 'exact'] as const)('%s: streamed = whole (block-wise backward through the copies)', async (method) => {
    const { model: whole } = await hfModel(MODELS[0].opts);
    const streamed = HookedTransformer.fromBlockSource(memoryBlockSource(whole.cfg, whole.canonicalWeights()), { chunkFloats: 7 * whole.cfg.dModel });
    const graph = graphOf(whole, 'per-head');
    const before = tf.memory().numTensors;
    const a = attributeEdges(whole, graph, data, { method, igSteps: 2 });
    const b = attributeEdges(streamed, graph, data, { method, igSteps: 2 });
    expect(tf.memory().numTensors).toBe(before);
    const d = relDiff(b.scores, a.scores);
    console.log(`per-head ${method}: max |streamed − whole| / max |whole| = ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
    whole.dispose();
    streamed.dispose();
  });
});

describe('n_kv_heads = n_heads', () => {
  it('grouped and per-head are the same graph and give the same scores (every method)', async () => {
    const { model } = await hfModel({ modelType: 'llama', seed: 47, std: 0.3, nHeads: 4, nKvHeads: 4, vocab: VOCAB });
    const a = graphOf(model, 'grouped');
    const b = graphOf(model, 'per-head');
    expect(b.targets.map((t) => t.id)).toEqual(a.targets.map((t) => t.id));
    for (const method of EDGE_METHODS) {
      const sa = attributeEdges(model, a, data, { method, igSteps: 2 });
      const sb = attributeEdges(model, b, data, { method, igSteps: 2 });
      expect(Math.max(...Array.from(sa.scores, Math.abs))).toBeGreaterThan(1e-3);
      expect(Array.from(sb.scores), method).toEqual(Array.from(sa.scores));
    }
    model.dispose();
  });
});

describe('relp circuit --gqa on a grouped-query checkpoint (4 query heads, 2 kv heads)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'relp-gqa-per-head-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeWordDataset(dir, data.pairs);

  it.each(['grouped', 'per-head'] as const)('--gqa %s --method eap,eap-relp,eap-ig,exact writes a circuit over that graph', async (gqa) => {
    const out = join(dir, gqa);
    const { graph } = await runCircuitCli(MODELS[0].opts, VOCAB + 2, join(dir, 'data.jsonl'), out, 'eap,eap-relp,eap-ig,exact', gqa, ['--gqa', gqa]);
    const circuit = readCircuitFile(out);
    expect(circuit.metadata.gqa).toBe(gqa);
    // Every link names a (node, input) target of this convention's graph.
    const targets = new Set(graph.targets.map((t) => `${graph.nodes[t.node].id}|${t.input ?? ''}`));
    for (const l of circuit.links) expect(targets.has(`${l.target}|${l.target_input ?? ''}`), `${l.source}->${l.target}<${l.target_input}>`).toBe(true);
  });
});
