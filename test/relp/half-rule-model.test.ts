/**
 * The Half-rule on a gated MLP inside the model (Llama-shaped: SwiGLU, RMSNorm, RoPE, GQA):
 * forward values are bit-identical with and without it, and the gradient through the product
 * post = silu(pre) ⊙ pre_linear is exactly half the plain one per factor, as hand-derived from
 * the cached activations:
 *   plain:  ∂m/∂pre_linear = g ⊙ silu(pre),  ∂m/∂pre = g ⊙ pre_linear ⊙ silu'(pre)
 *   half:   each × 1/2,   with g = ∂m/∂post (the same in both: nothing after the last layer's
 *   product has a rule) and silu'(x) = σ(x)(1 + x(1 − σ(x))).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { writeHFCheckpoint } from '../helpers/hf-checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'relp-half-'));
writeHFCheckpoint(dir, { modelType: 'llama', seed: 12, std: 0.2 });
const ck = await loadCheckpoint(dir);
const model = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
afterAll(() => {
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});
const TOKENS = [
  [4, 9, 13, 2, 27, 8],
  [31, 5, 5, 17, 3, 40],
];
const P = TOKENS[0].length;
const metric = (lg: tf.Tensor3D) => tf.sum(tf.slice(lg, [0, P - 1, 7], [-1, 1, 1])) as tf.Scalar;
const L = model.cfg.nLayers;
const b = `blocks.${L - 1}.mlp.`;
const names = [b + 'hook_pre', b + 'hook_pre_linear', b + 'hook_post', 'blocks.0.hook_resid_pre', `blocks.${L - 1}.hook_resid_post`];

describe('Half-rule on the gated MLP product', () => {
  it('leaves logits and every activation bit-identical', () => {
    const all = model.hookNames().filter((n) => !n.endsWith('hook_result'));
    const a = model.runWithCache(TOKENS, { names: all });
    const h = model.runWithCacheAndGrads(TOKENS, metric, { names: all, rules: { half: true } });
    expect(Array.from(h.logits.dataSync())).toEqual(Array.from(a.logits.dataSync()));
    for (const n of all) expect(Array.from(h.cache[n].dataSync()), n).toEqual(Array.from(a.cache[n].dataSync()));
    tf.dispose([a.logits, h.logits, h.value]);
    disposeCache(a.cache, h.cache, h.grads);
  });

  it('gives each factor exactly half its plain gradient (vs the hand-derived gradient)', () => {
    const plain = model.runWithCacheAndGrads(TOKENS, metric, { names });
    const half = model.runWithCacheAndGrads(TOKENS, metric, { names, rules: { half: true } });
    const pre = plain.cache[b + 'hook_pre'].dataSync();
    const lin = plain.cache[b + 'hook_pre_linear'].dataSync();
    const g = plain.grads[b + 'hook_post'].dataSync();
    expect(Array.from(half.grads[b + 'hook_post'].dataSync())).toEqual(Array.from(g));
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    for (const [rules, r, k] of [['plain', plain, 1], ['half', half, 0.5]] as const) {
      const gLin = r.grads[b + 'hook_pre_linear'].dataSync();
      const gPre = r.grads[b + 'hook_pre'].dataSync();
      for (let i = 0; i < pre.length; i++) {
        const s = sig(pre[i]);
        const wantLin = k * g[i] * pre[i] * s;
        const wantPre = k * g[i] * lin[i] * s * (1 + pre[i] * (1 - s));
        expect(Math.abs(gLin[i] - wantLin), `${rules} pre_linear[${i}]`).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(wantLin));
        expect(Math.abs(gPre[i] - wantPre), `${rules} pre[${i}]`).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(wantPre));
      }
    }
    // And the rule is really on: the residual gradient before the MLPs changes.
    const r0 = 'blocks.0.hook_resid_pre';
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(plain.grads[r0], half.grads[r0]))).dataSync()[0]);
    expect(diff).toBeGreaterThan(1e-4);
    for (const r of [plain, half]) {
      tf.dispose([r.logits, r.value]);
      disposeCache(r.cache, r.grads);
    }
  });
});
