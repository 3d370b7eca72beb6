/**
 * AtP* GradDrop against its definition (Kramár et al. 2024), computed here independently:
 * for each layer l, one separate backward pass (tf.grad of the model's plain forward) in which
 * layer l's contributions to the residual stream (its attention and MLP outputs) are replaced by
 * their own values as constants, so no gradient flows through them; then
 *   GradDrop[k, p] = 1/(L−1) · Σ_l Σ_b | Σ_d (a_clean − a_corrupt)_{b,p,d} · ∂m/∂a^{(drop l)}_{b,p,d} |
 * with m the batch-mean normalised logit difference at the corrupt run (denoising).
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { configFromHF } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { ATP_STAR, attributionPatch } from '../../src/patching/attribution-patching.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import { randomPairs } from '../helpers/random-pairs.ts';

// Three layers, so the 1/(L−1) average is not a no-op.
const cfg = configFromHF({ n_layer: 3, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 23 });

describe('AtP* GradDrop', () => {
  const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 9, std: 0.3 }));
  const data = toPatchingData(randomPairs(3, 6, 29, cfg.dVocab));
  const L = cfg.nLayers;
  const B = data.clean.length;
  const P = data.pos;

  /** Mean logit difference of a logits tensor [B, P, V] at the last position. */
  const meanLd = (logits: tf.Tensor3D): tf.Scalar =>
    tf.tidy(() => {
      const last = tf.squeeze(tf.slice(logits, [0, P - 1, 0], [-1, 1, -1]), [1]) as tf.Tensor2D; // [B, V]
      const pick = (ids: number[]) => tf.sum(tf.mul(last, tf.oneHot(ids, cfg.dVocab)), 1); // [B]
      return tf.mean(tf.sub(pick(data.answerIds), pick(data.wrongIds))) as tf.Scalar;
    });

  /** Activations of `name` [B, P, D] on `tokens` (from a caching forward). */
  const act = (tokens: number[][], name: string): tf.Tensor => {
    const r = model.runWithCache(tokens, { names: [name] });
    r.logits.dispose();
    return r.cache[name]!;
  };

  /** The definition, for hook `hookOf(k)` of every layer k: [L][P]. */
  function reference(hookOf: (k: number) => string): number[][] {
    const clean = tf.tidy(() => meanLd(model.forward(data.clean))).dataSync()[0]!;
    const corrupt = tf.tidy(() => meanLd(model.forward(data.corrupt))).dataSync()[0]!;
    const out = Array.from({ length: L }, () => new Array<number>(P).fill(0));
    for (let drop = 0; drop < L; drop++) {
      // Layer `drop`'s residual contributions at the corrupt run, as constants.
      const frozen = [`blocks.${drop}.hook_attn_out`, `blocks.${drop}.hook_mlp_out`].map((n) => ({ name: n, value: act(data.corrupt, n) }));
      for (let k = 0; k < L; k++) {
        const name = hookOf(k);
        const base = act(data.corrupt, name);
        const diff = tf.tidy(() => tf.sub(act(data.clean, name), base)); // [B, P, D]
        // The held component itself is a constant in that pass: no gradient reaches it.
        const held = frozen.some((f) => f.name === name);
        const grad = held ? tf.zerosLike(base) : tf.tidy(() =>
          tf.grad((delta: tf.Tensor) => {
            const hooks = [{ name, fn: (x: tf.Tensor) => tf.add(x, delta) }, ...frozen.map((f) => ({ name: f.name, fn: () => f.value }))];
            return tf.div(tf.sub(meanLd(model.forward(data.corrupt, { hooks })), corrupt), clean - corrupt) as tf.Scalar;
          })(tf.zerosLike(base)),
        );
        const e = tf.tidy(() => tf.abs(tf.sum(tf.mul(diff, grad), 2))).arraySync() as number[][]; // [B, P]
        for (let b = 0; b < B; b++) for (let p = 0; p < P; p++) out[k]![p]! += e[b]![p]! / (L - 1);
        tf.dispose([base, diff, grad]);
      }
      tf.dispose(frozen.map((f) => f.value));
    }
    return out;
  }

  it('equals L separate backward passes, each with one layer held constant (resid_pre, mlp_out)', () => {
    const r = attributionPatch(model, data, { components: 'resid_pre,mlp_out', methods: [ATP_STAR] });
    for (const [comp, hookOf] of [
      ['resid_pre', (k: number) => `blocks.${k}.hook_resid_pre`],
      ['mlp_out', (k: number) => `blocks.${k}.hook_mlp_out`],
    ] as const) {
      const want = reference(hookOf);
      const got = r.scores['atp*'][comp]!.values as number[][];
      let worst = 0;
      for (let k = 0; k < L; k++) for (let p = 0; p < P; p++) worst = Math.max(worst, Math.abs(got[k]![p]! - want[k]![p]!));
      const scale = Math.max(...want.flat().map(Math.abs));
      expect(scale).toBeGreaterThan(1e-3); // not a comparison of zeros
      expect(worst, `${comp}: worst |Δ| ${worst} of max ${scale}`).toBeLessThan(1e-4 * Math.max(1, scale));
    }
  });

  it('is not plain AtP: dropping layers changes the estimate', () => {
    const r = attributionPatch(model, data, { components: 'resid_pre', methods: [ATP_STAR, { name: 'atp' }] });
    // |AtP| summed over prompts, per cell, versus GradDrop: they must differ somewhere.
    const g = (r.scores['atp*'].resid_pre!.values as number[][]).flat();
    const a = (r.scores.atp.resid_pre!.values as number[][]).flat();
    expect(Math.max(...g.map((v, i) => Math.abs(v - Math.abs(a[i]!))))).toBeGreaterThan(1e-4);
  });
});
