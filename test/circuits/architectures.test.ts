/**
 * Edge circuits on non-GPT-2 topologies, from the model's own topology (`model.topology()`):
 * GQA (k / v targets per kv head) and parallel blocks (MLP l reads resid_pre l). Independent
 * checks: patching every edge from the clean run reproduces the clean logits exactly (each node
 * input is then the clean residual stream at that point, which holds only if every target reads
 * exactly the nodes the model's residual stream sums there), no edge gives the corrupt logits,
 * and the graph's edge count follows the closed form of each topology. Gemma-2's post-norms are
 * on the reading side (each target normalises the per-layer sums it sees), so the same holds there.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { buildGraph } from '../../src/circuits/graph.ts';
import { graphForward } from '../../src/circuits/graph-forward.ts';
import { writeHFCheckpoint, type HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function build(o: HFCheckpointOptions): Promise<HookedTransformer> {
  const dir = mkdtempSync(join(tmpdir(), `relp-circ-${o.modelType}-`));
  dirs.push(dir);
  writeHFCheckpoint(dir, o);
  const ck = await loadCheckpoint(dir);
  return HookedTransformer.fromStateDict(ck.config, ck.stateDict);
}

const CLEAN = [
  [3, 9, 27, 4, 11, 40],
  [8, 1, 5, 33, 21, 6],
];
const CORRUPT = [
  [3, 12, 27, 7, 11, 2],
  [8, 30, 5, 14, 21, 9],
];

describe.each([
  { name: 'llama (GQA 4/2)', opts: { modelType: 'llama', seed: 41, std: 0.3 } as HFCheckpointOptions },
  { name: 'gpt_neox (parallel blocks)', opts: { modelType: 'gpt_neox', seed: 42, std: 0.3 } as HFCheckpointOptions },
  { name: 'gpt_neox sequential', opts: { modelType: 'gpt_neox', seed: 43, std: 0.3, parallelResidual: false } as HFCheckpointOptions },
  // Post-norms (MIB's convention, src/circuits/post-norm.ts): each target normalises the sums it sees.
  { name: 'gemma2 (post-norms, GQA 4/2)', opts: { modelType: 'gemma2', seed: 44, std: 0.3 } as HFCheckpointOptions },
])('$name', ({ opts }) => {
  it('full edge patch = clean run, no patch = corrupt run, edge count by topology', async () => {
    const model = await build(opts);
    const topo = model.topology();
    const { nLayers: L, nHeads: H, nKvHeads: KV } = topo;
    const graph = buildGraph(L, H, topo);
    // Closed form: per layer H q-targets and 2·KV k/v targets reading 1 + l(H+1) nodes, the MLP
    // reading those plus H more when sequential; the logits read all 1 + L(H+1).
    let want = 1 + L * (H + 1);
    for (let l = 0; l < L; l++) want += (H + 2 * KV) * (1 + l * (H + 1)) + 1 + l * (H + 1) + (topo.mlpReadsSameLayerHeads ? H : 0);
    expect(graph.nEdges).toBe(want);
    if (KV < H) expect(graph.targets.some((t) => t.id === 'a0.kv1<k>')).toBe(true);
    const before = tf.memory().numTensors;
    const src = graphForward(model, graph, CLEAN, { collectOutputs: true, lastPositionOnly: false });
    const clean = model.forward(CLEAN);
    const corrupt = model.forward(CORRUPT);
    const all = graphForward(model, graph, CORRUPT, { patch: { src: src.outputs!, coef: new Float32Array(graph.nEdges).fill(1) }, lastPositionOnly: false });
    const none = graphForward(model, graph, CORRUPT, { patch: { src: src.outputs!, coef: new Float32Array(graph.nEdges) }, lastPositionOnly: false });
    const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
    expect(maxDiff(src.logits, clean)).toBeLessThan(1e-5);
    expect(maxDiff(all.logits, clean)).toBeLessThan(1e-4);
    expect(maxDiff(none.logits, corrupt)).toBeLessThan(1e-5);
    expect(maxDiff(clean, corrupt)).toBeGreaterThan(1e-2); // the check has teeth
    tf.dispose([src.logits, src.outputs!, clean, corrupt, all.logits, none.logits]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

