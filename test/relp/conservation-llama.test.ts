/**
 * Conservation on a Llama-shaped model (RMSNorm, SwiGLU, RoPE, GQA 4 query / 2 kv heads, no
 * biases), as test/relp/conservation.test.ts shows for GPT-2: with the full rule set relp-ah
 * (LN + Identity + Half + AH) the modified backward sees a network that is homogeneous of degree
 * one in the residual stream (RMSNorm scale frozen, silu(x)/x frozen, the gate product x·y split
 * half-half, attention pattern frozen, RoPE linear), so Σ a ⊙ ∂̃m/∂a over any residual layer equals
 * the logit m. Without the Half-rule the gated product is degree two and relevance through each
 * MLP is counted twice, so conservation fails: the test shows both.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { RULE_PRESETS, type RuleSet } from '../../src/rules/rules.ts';
import { writeHFCheckpoint } from '../helpers/hf-checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'relp-cons-llama-'));
writeHFCheckpoint(dir, { modelType: 'llama', seed: 5, std: 0.25, nLayers: 3, dModel: 32, nHeads: 4, nKvHeads: 2, zeroBias: true });
const ck = await loadCheckpoint(dir);
const model = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
afterAll(() => {
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});
const TOKENS = [
  [3, 14, 15, 9, 26, 5, 35, 8, 9, 7],
  [2, 7, 18, 28, 18, 28, 45, 9, 0, 4],
];
const P = TOKENS[0].length;
const TARGET = 17;
const L = model.cfg.nLayers;
const RESID = [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), 'blocks.1.hook_resid_mid', `blocks.${L - 1}.hook_resid_post`, 'hook_embed'];

function deviations(rules: RuleSet): { value: number; dev: Record<string, number> }[] {
  return TOKENS.map((_, b) => {
    const metric = (lg: tf.Tensor3D) => tf.sum(tf.slice(lg, [b, P - 1, TARGET], [1, 1, 1])) as tf.Scalar;
    const r = model.runWithCacheAndGrads(TOKENS, metric, { names: RESID, rules });
    const value = r.value.dataSync()[0];
    const dev: Record<string, number> = {};
    for (const n of RESID) dev[n] = (tf.tidy(() => tf.sum(tf.mul(r.cache[n], r.grads[n])).dataSync()[0]) - value) / Math.abs(value);
    tf.dispose([r.logits, r.value]);
    disposeCache(r.cache, r.grads);
    return { value, dev };
  });
}

describe('relevance conservation on a zero-bias Llama-shaped model', () => {
  it('relp-ah (LN + Identity + Half + AH): Σ a ⊙ ∂̃m/∂a over each residual layer equals the logit to 1e-4', () => {
    for (const { value, dev } of deviations(RULE_PRESETS['relp-ah'])) {
      expect(Math.abs(value)).toBeGreaterThan(0.05);
      for (const [n, d] of Object.entries(dev)) expect(Math.abs(d), `${n}: relative deviation ${d}`).toBeLessThan(1e-4);
    }
  });

  it('without the Half-rule it fails (the gate product is counted twice)', () => {
    for (const { dev } of deviations({ ln: true, identity: true, ah: true })) {
      expect(Math.abs(dev['blocks.0.hook_resid_pre'])).toBeGreaterThan(1e-2);
      // After the last MLP only the final norm (rule) and the unembedding remain: conserved there.
      expect(Math.abs(dev[`blocks.${L - 1}.hook_resid_post`])).toBeLessThan(1e-4);
    }
  });
});
