/**
 * Patching methods on every non-GPT-2 architecture, unchanged: activation patching (with its
 * suffix-only recomputation from cached rotated keys and values, GQA kv-head grids) equals a naive
 * one-full-forward-per-patch loop, and the model's attentionPattern (used by the AtP* QK fix)
 * equals the forward's own pattern (rotary, soft-cap, sliding window, GQA), including for a
 * query suffix against all keys.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { activationPatch } from '../../src/patching/activation-patching.ts';
import { attributionPatch, ATP, ATP_STAR } from '../../src/patching/attribution-patching.ts';
import { componentSpec, gridCells, type ComponentName } from '../../src/patching/components.ts';
import { toPatchingData, type PatchingData } from '../../src/patching/data.ts';
import { flattenTensor } from '../../src/contracts/score-tensor.ts';
import { writeHFCheckpoint, type HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { randomPairs } from '../helpers/random-pairs.ts';

const dirs: string[] = [];
const models: HookedTransformer[] = [];
afterAll(() => {
  models.forEach((m) => m.dispose());
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

async function build(o: HFCheckpointOptions): Promise<HookedTransformer> {
  const dir = mkdtempSync(join(tmpdir(), `relp-patch-${o.modelType}-`));
  dirs.push(dir);
  writeHFCheckpoint(dir, o);
  const ck = await loadCheckpoint(dir);
  const m = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
  models.push(m);
  return m;
}

/** One full forward per patched cell (no suffix reuse), normalised logit difference. */
function naivePatch(model: HookedTransformer, data: PatchingData, comp: ComponentName): number[] {
  const cfg = model.cfg;
  const spec = componentSpec(comp);
  const ld = (tokens: number[][], hooks = [] as Parameters<HookedTransformer['runWithHooks']>[1]) =>
    tf.tidy(() => {
      const lg = model.runWithHooks(tokens, hooks);
      const last = tf.squeeze(tf.slice(lg, [0, data.pos - 1, 0], [-1, 1, -1]), [1]);
      const a = tf.sum(tf.mul(last, tf.oneHot(tf.tensor1d(data.answerIds, 'int32'), cfg.dVocab)), -1);
      const w = tf.sum(tf.mul(last, tf.oneHot(tf.tensor1d(data.wrongIds, 'int32'), cfg.dVocab)), -1);
      return tf.mean(tf.sub(a, w)).dataSync()[0];
    });
  const clean = ld(data.clean);
  const corrupt = ld(data.corrupt);
  const out: number[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const { cache, logits } = model.runWithCache(data.clean, { names: [spec.hook(l)] });
    logits.dispose();
    const srcAct = cache[spec.hook(l)];
    for (const cell of gridCells(spec.cellShape(cfg, data.pos))) {
      const v = ld(data.corrupt, [
        { name: spec.hook(l), fn: (x) => tf.where(tf.broadcastTo(tf.tile(spec.cellMask(cfg, data.pos, cell), [x.shape[0], ...Array(x.rank - 1).fill(1)]), x.shape), srcAct, x) },
      ]);
      out.push((v - corrupt) / (clean - corrupt));
    }
    srcAct.dispose();
  }
  return out;
}

const CASES: { name: string; opts: HFCheckpointOptions }[] = [
  { name: 'llama (GQA 4/2, rotary)', opts: { modelType: 'llama', seed: 31, std: 0.3 } },
  { name: 'gpt_neox (parallel, partial rotary)', opts: { modelType: 'gpt_neox', seed: 32, std: 0.3 } },
  { name: 'gemma2 (window 3, soft-caps, GQA)', opts: { modelType: 'gemma2', seed: 33, std: 0.3, slidingWindow: 3 } },
  { name: 'mistral (window 2 on every layer)', opts: { modelType: 'mistral', seed: 34, std: 0.3, slidingWindow: 2 } },
];

describe.each(CASES)('$name', (c) => {
  it('activationPatch equals one full forward per patch (resid_pre, attn_out, mlp_out, k, v, z_pos)', async () => {
    const model = await build(c.opts);
    const data = toPatchingData(randomPairs(3, 6, 17, model.cfg.dVocab));
    const comps: ComponentName[] = ['resid_pre', 'attn_out', 'mlp_out', 'k', 'v', 'z_pos'];
    const res = await activationPatch(model, data, { components: comps, batch: 7 });
    for (const comp of comps) {
      const got = flattenTensor(res.scores[comp]!);
      const want = naivePatch(model, data, comp);
      expect(got.length, comp).toBe(want.length);
      if (comp === 'k' || comp === 'v') expect(res.scores[comp]!.shape, comp).toEqual([model.cfg.nLayers, model.cfg.nKvHeads]);
      got.forEach((g, i) => expect(Math.abs(g - want[i]), `${comp}[${i}]`).toBeLessThan(2e-5 + 1e-4 * Math.abs(want[i])));
    }
  });

  it('attentionPattern(l, q, k) equals the forward pattern, also for a query suffix', async () => {
    const model = models[models.length - 1];
    const tokens = [
      [3, 9, 27, 4, 11, 40, 2],
      [8, 1, 5, 33, 21, 6, 19],
    ];
    const L = model.cfg.nLayers;
    const names = Array.from({ length: L }, (_, l) => ['hook_q', 'hook_k', 'hook_pattern'].map((h) => `blocks.${l}.attn.${h}`)).flat();
    const { logits, cache } = model.runWithCache(tokens, { names });
    for (let l = 0; l < L; l++) {
      const q = cache[`blocks.${l}.attn.hook_q`];
      const k = cache[`blocks.${l}.attn.hook_k`];
      const p = cache[`blocks.${l}.attn.hook_pattern`];
      const a = model.attentionPattern(l, q, k);
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, p))).dataSync()[0]);
      expect(d, `layer ${l}`).toBeLessThan(1e-6);
      // Queries 4.. only, against every key: rows 4.. of the pattern.
      const qs = tf.slice(q, [0, 4, 0, 0], [-1, -1, -1, -1]);
      const s = model.attentionPattern(l, qs, k);
      const ds = tf.tidy(() => tf.max(tf.abs(tf.sub(s, tf.slice(p, [0, 0, 4, 0], [-1, -1, -1, -1])))).dataSync()[0]);
      expect(ds, `layer ${l} suffix`).toBeLessThan(1e-6);
      tf.dispose([a, qs, s]);
    }
    logits.dispose();
    disposeCache(cache);
  });

  it('AtP and AtP* run on q/k/v with kv-head grids and leave no tensors', async () => {
    const model = models[models.length - 1];
    const data = toPatchingData(randomPairs(2, 6, 5, model.cfg.dVocab));
    const before = tf.memory().numTensors;
    const r = attributionPatch(model, data, { components: ['q', 'k', 'v', 'resid_pre'], methods: [ATP, ATP_STAR] });
    expect(r.scores[ATP_STAR.name].k!.shape).toEqual([model.cfg.nLayers, model.cfg.nKvHeads]);
    expect(r.scores[ATP_STAR.name].q!.shape).toEqual([model.cfg.nLayers, model.cfg.nHeads]);
    expect(flattenTensor(r.scores[ATP_STAR.name].k!).every(Number.isFinite)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});
