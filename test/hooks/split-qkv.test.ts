/**
 * Split per-head q/k/v inputs (forward option splitQkvInput, TransformerLens use_split_qkv_input)
 * on GPT-2 and a GQA Llama: same logits as the fused path, documented shapes, and the defining
 * identity of the backward: resid_pre feeds the skip connection and every head's q/k/v input, so
 * ∂m/∂resid_pre = ∂m/∂resid_mid + Σ_head ∂m/∂q_input + Σ_kv_head (∂m/∂k_input + ∂m/∂v_input).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import { hookShape } from '../../src/hooks/hook-points.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { writeHFCheckpoint, type HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const TOKENS = [
  [3, 9, 27, 4, 11],
  [8, 1, 5, 33, 21],
];

describe.each([{ modelType: 'gpt2', seed: 51, std: 0.3 }, { modelType: 'llama', seed: 52, std: 0.3 }] as HFCheckpointOptions[])('$modelType', (o) => {
  it('same logits, kv-head shapes, and the resid_pre gradient identity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-split-'));
    dirs.push(dir);
    writeHFCheckpoint(dir, o);
    const ck = await loadCheckpoint(dir);
    const model = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
    const [B, P] = [TOKENS.length, TOKENS[0].length];
    const fused = model.forward(TOKENS);
    const split = model.forward(TOKENS, { splitQkvInput: true });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(fused, split))).dataSync()[0])).toBeLessThan(1e-5);
    const l = 1;
    const n = (s: string) => `blocks.${l}.${s}`;
    const names = [n('hook_resid_pre'), n('hook_resid_mid'), n('attn.hook_q_input'), n('attn.hook_k_input'), n('attn.hook_v_input'), n('ln1.hook_scale_k')];
    const metric = (lg: tf.Tensor3D) => tf.sum(tf.slice(lg, [0, P - 1, 3], [-1, 1, 1])) as tf.Scalar;
    const r = model.runWithCacheAndGrads(TOKENS, metric, { names, splitQkvInput: true });
    for (const name of names) expect(r.cache[name].shape, name).toEqual(hookShape(name, model.cfg, B, P));
    expect(r.cache[n('attn.hook_k_input')].shape[2]).toBe(model.cfg.nKvHeads);
    const lhs = r.grads[n('hook_resid_pre')];
    const rhs = tf.tidy(() =>
      tf.addN([r.grads[n('hook_resid_mid')], tf.sum(r.grads[n('attn.hook_q_input')], 2), tf.sum(r.grads[n('attn.hook_k_input')], 2), tf.sum(r.grads[n('attn.hook_v_input')], 2)]),
    );
    const scale = tf.tidy(() => tf.max(tf.abs(lhs)).dataSync()[0]);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(lhs, rhs))).dataSync()[0])).toBeLessThan(1e-5 * Math.max(1, scale));
    // Hooks of the split path need the option; the fused ln1 hooks do not exist with it.
    expect(() => model.forward(TOKENS, { hooks: [{ name: n('attn.hook_q_input'), fn: () => undefined }] })).toThrow(/only with the forward option splitQkvInput/);
    expect(() => model.forward(TOKENS, { splitQkvInput: true, hooks: [{ name: n('ln1.hook_scale'), fn: () => undefined }] })).toThrow(/does not exist with splitQkvInput/);
    tf.dispose([fused, split, r.logits, r.value, rhs]);
    disposeCache(r.cache, r.grads);
    model.dispose();
  });
});
