/**
 * The streamed engine (weights uploaded block by block, block-wise backward) against the
 * whole-model forward and tape on the same weights: logits, caches and gradients, with and
 * without LRP rules, post-hooks (GradDrop's stop-gradient), split q/k/v inputs, user hooks,
 * resumed runs and vocabulary chunks, on every architecture family. The whole-model path is
 * itself checked against PyTorch (test/reference/), so equality here carries that check over.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { hfToCanonical } from '../../src/models/architectures/index.ts';
import { RULE_PRESETS } from '../../src/rules/rules.ts';
import { stopGradient } from '../../src/rules/ops.ts';
import { writeHFCheckpoint, type HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { memoryBlockSource } from '../helpers/memory-block-source.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The same random checkpoint as a whole model and as a streamed one (vocabulary in chunks of 7 rows). */
async function pair(o: HFCheckpointOptions): Promise<{ whole: HookedTransformer; streamed: HookedTransformer }> {
  const dir = mkdtempSync(join(tmpdir(), `relp-stream-${o.modelType}-`));
  dirs.push(dir);
  writeHFCheckpoint(dir, o);
  const ck = await loadCheckpoint(dir);
  const whole = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
  const streamed = HookedTransformer.fromBlockSource(memoryBlockSource(whole.cfg, hfToCanonical(ck.config, ck.stateDict)), { chunkFloats: 7 * whole.cfg.dModel });
  return { whole, streamed };
}

const TOKENS = [
  [3, 9, 27, 4, 11, 40],
  [8, 1, 5, 33, 21, 6],
];

/** Max |a − b| / max(1, max |b|). */
function relDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / Math.max(1, tf.max(tf.abs(b)).dataSync()[0]));
}

/** max |a|. */
function maxAbs(a: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
}

const metric = (lg: tf.Tensor3D) => {
  const [b, p, v] = lg.shape;
  return tf.sum(tf.mul(tf.slice(lg, [0, p - 1, 0], [b, 1, v]), tf.linspace(-1, 1, v))) as tf.Scalar;
};

describe.each([
  { name: 'gpt2', opts: { modelType: 'gpt2', seed: 51 } as HFCheckpointOptions },
  { name: 'gpt_neox (parallel)', opts: { modelType: 'gpt_neox', seed: 52 } as HFCheckpointOptions },
  { name: 'llama (GQA 4/2)', opts: { modelType: 'llama', seed: 53, nHeads: 4, nKvHeads: 2 } as HFCheckpointOptions },
  { name: 'qwen2 (biases)', opts: { modelType: 'qwen2', seed: 54 } as HFCheckpointOptions },
  { name: 'gemma2 (post-norms, caps)', opts: { modelType: 'gemma2', seed: 55 } as HFCheckpointOptions },
])('streamed = whole model: $name', ({ opts }) => {
  it('forward, cache and gradients (plain, RelP rules, GradDrop post-hooks, split q/k/v, resumed)', async () => {
    const { whole, streamed } = await pair(opts);
    expect(streamed.execution).toBe('streamed');
    const L = whole.cfg.nLayers;
    const before = tf.memory().numTensors;
    const a = whole.forward(TOKENS);
    const b = streamed.forward(TOKENS);
    expect(relDiff(b, a)).toBeLessThan(1e-5);
    expect(maxAbs(a)).toBeGreaterThan(1e-2); // the logits are not trivially zero
    tf.dispose([a, b]);
    expect(tf.memory().numTensors, 'after forward').toBe(before);
    const names = ['hook_embed', 'blocks.0.hook_resid_pre', 'blocks.0.attn.hook_z', 'blocks.0.mlp.hook_post', `blocks.${L - 1}.hook_attn_out`, `blocks.${L - 1}.hook_mlp_out`, `blocks.${L - 1}.hook_resid_post`, 'ln_final.hook_normalized'];
    const settings = [
      { rules: undefined, lastPositionOnly: true },
      { rules: RULE_PRESETS.relp, lastPositionOnly: true },
      { rules: RULE_PRESETS.relp, lastPositionOnly: false },
      { rules: undefined, lastPositionOnly: true, postHooks: [{ name: 'blocks.0.hook_mlp_out', fn: (x: tf.Tensor) => stopGradient(x) }] },
    ];
    for (const s of settings) {
      const ra = whole.runWithCacheAndGrads(TOKENS, metric, { names, ...s });
      const rb = streamed.runWithCacheAndGrads(TOKENS, metric, { names, ...s });
      expect(Math.abs(rb.value.dataSync()[0] - ra.value.dataSync()[0]) / Math.max(1, Math.abs(ra.value.dataSync()[0]))).toBeLessThan(1e-5);
      expect(relDiff(rb.logits, ra.logits)).toBeLessThan(1e-5);
      for (const n of names) {
        expect(relDiff(rb.cache[n], ra.cache[n]), `cache ${n}`).toBeLessThan(1e-5);
        expect(relDiff(rb.grads[n], ra.grads[n]), `grad ${n} (${JSON.stringify(s.rules)})`).toBeLessThan(1e-5);
      }
      expect(maxAbs(ra.grads['blocks.0.hook_resid_pre'])).toBeGreaterThan(1e-6);
      for (const r of [ra, rb]) {
        tf.dispose([r.logits, r.value]);
        disposeCache(r.cache, r.grads);
      }
      expect(tf.memory().numTensors, `after grads ${JSON.stringify(s)}`).toBe(before);
    }
    // runWithCache without user hooks frees each block's activations as it goes (kept clones only).
    const cacheNames = ['blocks.0.hook_resid_pre', 'blocks.0.attn.hook_pattern', `blocks.${L - 1}.hook_mlp_out`, 'ln_final.hook_normalized'];
    const ca = whole.runWithCache(TOKENS, { names: cacheNames });
    const cb = streamed.runWithCache(TOKENS, { names: cacheNames });
    expect(relDiff(cb.logits, ca.logits)).toBeLessThan(1e-5);
    for (const n of cacheNames) expect(relDiff(cb.cache[n], ca.cache[n]), `runWithCache ${n}`).toBeLessThan(1e-5);
    for (const r of [ca, cb]) {
      r.logits.dispose();
      disposeCache(r.cache);
    }
    expect(tf.memory().numTensors, 'after runWithCache').toBe(before);
    // Split q/k/v inputs (edge circuits' probes) and a resumed run from a cached residual.
    const split = [`blocks.${L - 1}.attn.hook_q_input`, `blocks.${L - 1}.attn.hook_k_input`, `blocks.${L - 1}.hook_mlp_in`];
    const sa = whole.runWithCacheAndGrads(TOKENS, metric, { names: split, splitQkvInput: true, rules: RULE_PRESETS.relp, lastPositionOnly: true });
    const sb = streamed.runWithCacheAndGrads(TOKENS, metric, { names: split, splitQkvInput: true, rules: RULE_PRESETS.relp, lastPositionOnly: true });
    for (const n of split) expect(relDiff(sb.grads[n], sa.grads[n]), n).toBeLessThan(1e-5);
    const { cache, logits } = whole.runWithCache(TOKENS, { names: [`blocks.${L - 1}.hook_resid_pre`] });
    logits.dispose();
    const resumeA = whole.forward(undefined, { startAtLayer: L - 1, resid: cache[`blocks.${L - 1}.hook_resid_pre`] });
    const resumeB = streamed.forward(undefined, { startAtLayer: L - 1, resid: cache[`blocks.${L - 1}.hook_resid_pre`] });
    expect(relDiff(resumeB, resumeA)).toBeLessThan(1e-5);
    for (const r of [sa, sb]) {
      tf.dispose([r.logits, r.value]);
      disposeCache(r.cache, r.grads);
    }
    disposeCache(cache);
    tf.dispose([resumeA, resumeB]);
    expect(tf.memory().numTensors).toBe(before);
    whole.dispose();
    streamed.dispose();
  });
});

describe('streamed model', () => {
  it('refuses tf.grad through its forward with a reason', async () => {
    const { whole, streamed } = await pair({ modelType: 'gpt2', seed: 56 });
    const before = tf.memory().numTensors;
    const x0 = tf.zeros([1, 3, whole.cfg.dModel]);
    expect(() => tf.grad((x: tf.Tensor) => tf.sum(streamed.forward(undefined, { startAtLayer: 1, resid: x })))(x0)).toThrow(/runWithCacheAndGrads/);
    x0.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => streamed.canonicalWeights()).toThrow(/on disk/);
    whole.dispose();
    streamed.dispose();
  });

  it('stops, without computing on, when the wasm heap has grown past the budget', async () => {
    const { whole, streamed } = await pair({ modelType: 'gpt2', seed: 57 });
    // Grow this process's heap past the check's floor (256 MB): the wasm heap never shrinks.
    tf.tensor(new Float32Array(80e6)).dispose(); // (tf.zeros + dataSync of this size took minutes on wasm)
    const before = tf.memory().numTensors;
    process.env.RELP_HEAP_LIMIT_GB = '0.001';
    try {
      expect(() => streamed.forward(TOKENS)).toThrow(/the wasm heap grew to \d+\.\d+ GB while streaming block 0 of 2, over the budget of 0\.26 GB/);
    } finally {
      delete process.env.RELP_HEAP_LIMIT_GB;
    }
    expect(tf.memory().numTensors).toBe(before);
    const ok = streamed.forward(TOKENS); // under the usual budget it runs
    ok.dispose();
    whole.dispose();
    streamed.dispose();
  });
});

describe('streamed model keeping its first blocks uploaded', () => {
  it('gives the same values, uploads only the other blocks again, and frees the kept ones on dispose', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-stream-keep-'));
    dirs.push(dir);
    writeHFCheckpoint(dir, { modelType: 'llama', seed: 56, nHeads: 4, nKvHeads: 2, nLayers: 3 });
    const ck = await loadCheckpoint(dir);
    const whole = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
    const before = tf.memory().numTensors;
    const kept = HookedTransformer.fromBlockSource(memoryBlockSource(whole.cfg, hfToCanonical(ck.config, ck.stateDict)), { keepBlocks: 2 });
    const names = ['blocks.0.hook_resid_pre', 'blocks.1.hook_mlp_out', 'blocks.2.hook_attn_out'];
    for (let pass = 0; pass < 2; pass++) {
      const ra = whole.runWithCacheAndGrads(TOKENS, metric, { names, rules: RULE_PRESETS.relp, lastPositionOnly: true });
      const rb = kept.runWithCacheAndGrads(TOKENS, metric, { names, rules: RULE_PRESETS.relp, lastPositionOnly: true });
      for (const n of names) expect(relDiff(rb.grads[n], ra.grads[n]), `pass ${pass} grad ${n}`).toBeLessThan(1e-5);
      expect(relDiff(rb.logits, ra.logits)).toBeLessThan(1e-5);
      for (const r of [ra, rb]) {
        tf.dispose([r.logits, r.value]);
        disposeCache(r.cache, r.grads);
      }
    }
    // Two passes, each a forward and a block-wise backward over 3 blocks: blocks 0 and 1 were
    // uploaded once, block 2 four times; every other use of blocks 0 and 1 was served kept.
    const s = kept.streamStats()!;
    expect(s.blocksUploaded).toBe(2 + 4);
    expect(s.cacheHits).toBe(2 * 4 - 2);
    kept.dispose();
    expect(tf.memory().numTensors).toBe(before);
    whole.dispose();
  });
});

describe('streamed model keeping every block uploaded', () => {
  it('takes gradients on one tape (no block recomputed), with the whole model\'s values, and frees everything on dispose', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-stream-keepall-'));
    dirs.push(dir);
    writeHFCheckpoint(dir, { modelType: 'gpt2', seed: 58, nLayers: 3 });
    const ck = await loadCheckpoint(dir);
    const whole = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
    const before = tf.memory().numTensors;
    const kept = HookedTransformer.fromBlockSource(memoryBlockSource(whole.cfg, hfToCanonical(ck.config, ck.stateDict)), { keepBlocks: 3, chunkFloats: 7 * whole.cfg.dModel });
    const names = ['hook_embed', 'blocks.0.hook_resid_pre', 'blocks.1.attn.hook_z', 'blocks.2.hook_mlp_out', 'ln_final.hook_normalized'];
    const settings = [
      { rules: RULE_PRESETS.relp, lastPositionOnly: true, logitIds: [4, 9] },
      { rules: undefined, lastPositionOnly: false },
    ];
    for (const s of settings) {
      const m = s.logitIds ? (lg: tf.Tensor3D) => tf.sum(tf.mul(tf.slice(lg, [0, lg.shape[1] - 1, 0], [-1, 1, -1]), tf.tensor1d([1, -1]))) as tf.Scalar : metric;
      const mw = s.logitIds ? (lg: tf.Tensor3D) => m(tf.concat(s.logitIds!.map((v) => tf.slice(lg, [0, 0, v], [-1, -1, 1])), 2) as tf.Tensor3D) : metric;
      const ra = whole.runWithCacheAndGrads(TOKENS, mw, { names, rules: s.rules, lastPositionOnly: s.lastPositionOnly });
      const rb = kept.runWithCacheAndGrads(TOKENS, m, { names, ...s });
      expect(Math.abs(rb.value.dataSync()[0] - ra.value.dataSync()[0])).toBeLessThan(1e-5 * Math.max(1, Math.abs(ra.value.dataSync()[0])));
      for (const n of names) {
        expect(relDiff(rb.cache[n], ra.cache[n]), `cache ${n}`).toBeLessThan(1e-5);
        expect(relDiff(rb.grads[n], ra.grads[n]), `grad ${n}`).toBeLessThan(1e-5);
      }
      expect(maxAbs(ra.grads['blocks.0.hook_resid_pre'])).toBeGreaterThan(1e-6);
      for (const r of [ra, rb]) {
        tf.dispose([r.logits, r.value]);
        disposeCache(r.cache, r.grads);
      }
    }
    // Each block was uploaded once and then served kept: the one tape recomputes nothing.
    const st = kept.streamStats()!;
    expect(st.blocksUploaded).toBe(3);
    expect(st.cacheHits).toBe(3);
    kept.dispose();
    expect(tf.memory().numTensors).toBe(before);
    whole.dispose();
  });
});
