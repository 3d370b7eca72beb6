/**
 * Conservation (REFERENCE §1): with zero biases and the full RelP rule set (LN + Identity + AH),
 * the network is, for the modified backward, a linear function of the residual stream, so the
 * relevance Σ a ⊙ ∂̃m/∂a over any residual-stream layer equals the metric m (one logit).
 *
 * Measured here (3 layers, 4 heads, d_model 32, weights std 0.1, zero biases, 2 prompts × 10 tokens,
 * relative deviation |ΣR − m| / |m| at resid_pre 0 / 1 / 2, resid_mid 1, resid_post 2):
 * - relp-ah: ≤ 2e-6 at every layer (float32 + the 1e-6 Identity stabiliser). Tolerance: 1e-4.
 * - plain gradients: 0.27 – 1.7; at the last resid_post |dev| = 1 − 2e-5 (relevance ≈ 0: the final
 *   LN with zero bias is scale-invariant up to eps, so Euler's theorem gives Σ x·∇ ≈ 0).
 * - relp (no AH): 0.07 – 1.3 (the attention softmax is not homogeneous).
 * - attnlrp: 0.1 – 0.99 before the last block, ~1e-7 after it. In gradient form its softmax rule is
 *   the ordinary softmax gradient (× x/x̃), and softmax is not homogeneous, so AttnLRP does not
 *   conserve relevance through attention in this setting.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import type { BaseConfig } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { RULE_PRESETS, type RuleSet } from '../../src/rules/rules.ts';

const CFG: BaseConfig = { nLayers: 3, nHeads: 4, dModel: 32, dHead: 8, dMlp: 128, nCtx: 16, dVocab: 50, eps: 1e-5, act: 'gelu_new' };
// biasStd 0: every bias (attention, MLP, and the LN offsets) is zero.
const SD = randomStateDict(CFG, { seed: 3, std: 0.1, biasStd: 0 });
const TOKENS = [
  [3, 14, 15, 9, 26, 5, 35, 8, 9, 7],
  [2, 7, 18, 28, 18, 28, 45, 9, 0, 4],
];
const P = TOKENS[0].length;
const TARGET = 17; // the explained logit, at the last position
const L = CFG.nLayers;
const RESID = [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), 'blocks.1.hook_resid_mid', `blocks.${L - 1}.hook_resid_post`];
const EMBED = ['hook_embed', 'hook_pos_embed'];
const model = HookedTransformer.fromStateDict(CFG, SD);
afterAll(() => model.dispose());

/** Relative deviations (ΣR − m)/|m| at each residual hook (and embed + pos_embed together), per prompt. */
function deviations(rules: RuleSet): { value: number; dev: Record<string, number> }[] {
  return TOKENS.map((_, b) => {
    const metric = (lg: tf.Tensor3D) => tf.sum(tf.slice(lg, [b, P - 1, TARGET], [1, 1, 1])) as tf.Scalar;
    const r = model.runWithCacheAndGrads(TOKENS, metric, { names: [...RESID, ...EMBED], rules });
    const value = r.value.dataSync()[0];
    const relevance = (names: string[]) =>
      tf.tidy(() => names.reduce((s, n) => s + tf.sum(tf.mul(r.cache[n], r.grads[n])).dataSync()[0], 0));
    const dev: Record<string, number> = {};
    for (const n of RESID) dev[n] = (relevance([n]) - value) / Math.abs(value);
    dev['embed + pos_embed'] = (relevance(EMBED) - value) / Math.abs(value);
    tf.dispose([r.logits, r.value]);
    disposeCache(r.cache, r.grads);
    return { value, dev };
  });
}

describe('relevance conservation on a zero-bias GPT-2', () => {
  it('relp-ah (LN + Identity + AH): Σ a ⊙ ∂̃m/∂a over each residual layer equals the logit to 1e-4', () => {
    for (const { value, dev } of deviations(RULE_PRESETS['relp-ah'])) {
      expect(Math.abs(value)).toBeGreaterThan(0.05); // a non-trivial logit
      for (const [n, d] of Object.entries(dev)) expect(Math.abs(d), `${n}: relative deviation ${d}`).toBeLessThan(1e-4);
    }
  });

  it('plain gradients fail it (and give zero relevance right before the scale-invariant final LN)', () => {
    for (const { dev } of deviations({})) {
      const pre = Array.from({ length: L }, (_, l) => Math.abs(dev[`blocks.${l}.hook_resid_pre`]));
      expect(Math.max(...pre)).toBeGreaterThan(0.5);
      expect(Math.min(...pre)).toBeGreaterThan(0.1);
      expect(Math.abs(dev[`blocks.${L - 1}.hook_resid_post`])).toBeCloseTo(1, 3); // ΣR ≈ 0 (eps breaks the invariance slightly)
    }
  });

  it('relp without AH fails it in the attention layers (softmax is not homogeneous)', () => {
    for (const { dev } of deviations(RULE_PRESETS.relp)) {
      expect(Math.abs(dev['blocks.0.hook_resid_pre'])).toBeGreaterThan(0.1);
      // After the last attention layer only LN (rule), MLP (Identity, no bias) and the unembedding remain: conserved.
      expect(Math.abs(dev[`blocks.${L - 1}.hook_resid_post`])).toBeLessThan(1e-4);
    }
  });

  it('attnlrp: conserved after the last block, not through attention (see the header for the measured deviations)', () => {
    for (const { dev } of deviations(RULE_PRESETS.attnlrp)) {
      expect(Math.abs(dev[`blocks.${L - 1}.hook_resid_post`])).toBeLessThan(1e-4);
      const before = Array.from({ length: L }, (_, l) => Math.abs(dev[`blocks.${l}.hook_resid_pre`]));
      expect(Math.max(...before)).toBeGreaterThan(0.05);
    }
  });
});
