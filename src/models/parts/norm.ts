/**
 * Norms with TransformerLens hooks (`{prefix}.hook_scale` [..., 1], `{prefix}.hook_normalized`
 * [..., d]) and the LN-rule (the scale is a constant in backward). As in TransformerLens,
 * LayerNorm's hook_normalized is after w and b; RMSNorm's is x / scale, before the gain.
 * - layernorm: (x − mean) / √(var + eps) · w + b
 * - rmsnorm: x / √(mean(x²) + eps) · w            (Llama, Qwen2, Mistral)
 * - gemma-rmsnorm: x / √(mean(x²) + eps) · (1 + w) (Gemma)
 */
import * as tf from '@tensorflow/tfjs';
import type { NormType } from '../config.ts';
import type { RuleSet } from '../../rules/rules.ts';
import { stopGradient } from '../../rules/ops.ts';
import type { HookRunner } from './hooks.ts';

/** A norm's weights: gain (HF's weight; Gemma adds 1 in the forward) and optional bias, [d]. */
export interface NormWeights {
  w: tf.Tensor1D;
  b?: tf.Tensor1D;
  /** Gemma: the gain 1 + w, built once. */
  gain?: tf.Tensor1D;
}

/**
 * Apply a norm over the last axis. x [..., d] → [..., d].
 * @param scaleName hook name for the scale (default `${prefix}.hook_scale`).
 */
export function applyNorm(
  x: tf.Tensor,
  type: NormType,
  nw: NormWeights,
  eps: number,
  prefix: string,
  hook: HookRunner,
  rules: RuleSet,
  scaleName = `${prefix}.hook_scale`,
  normalizedName = `${prefix}.hook_normalized`,
): tf.Tensor {
  const xc = type === 'layernorm' ? tf.sub(x, tf.mean(x, -1, true)) : x; // [..., d]
  let scale = tf.sqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps)); // [..., 1]
  scale = hook(scaleName, scale);
  if (rules.ln) scale = stopGradient(scale);
  if (type === 'layernorm') {
    let y = tf.mul(tf.div(xc, scale), nw.w);
    if (nw.b) y = tf.add(y, nw.b);
    return hook(normalizedName, y); // [..., d]
  }
  const gain = type === 'gemma-rmsnorm' ? (nw.gain ?? tf.add(nw.w, 1)) : nw.w;
  return tf.mul(hook(normalizedName, tf.div(xc, scale)), gain); // [..., d]
}
