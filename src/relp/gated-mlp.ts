/**
 * A gated MLP, `(act(x W₁) ⊙ (x W₂)) W_out` (SwiGLU / GeGLU style, no biases), with the RelP
 * rules that concern it: the Half-rule on the gate product and the Identity-rule on `act`.
 *
 * GPT-2 has no gated MLP; this exists so the Half-rule is exercised (and its conservation
 * property tested) on the kind of block it was designed for.
 */
import * as tf from '@tensorflow/tfjs';
import { linear } from '../models/parts/linear.ts';
import { silu } from '../models/parts/activations.ts';
import type { RuleSet } from '../rules/rules.ts';
import { halfProduct, identityRule } from '../rules/ops.ts';

export { silu };

/** Options of {@link gatedMlp}. */
export interface GatedMlpOptions {
  /** `half` → Half-rule on the gate product, `identity` → Identity-rule on `act`; others ignored. */
  rules?: RuleSet;
  /** Gate activation (default {@link silu}). */
  act?: (x: tf.Tensor) => tf.Tensor;
}

const identityCache = new WeakMap<(x: tf.Tensor) => tf.Tensor, (x: tf.Tensor) => tf.Tensor>();

/** The Identity-rule version of an activation, built once per activation function. */
function withIdentityRule(act: (x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
  let f = identityCache.get(act);
  if (!f) {
    f = identityRule(act);
    identityCache.set(act, f);
  }
  return f;
}

/**
 * Gated MLP forward. Rules are read on every call, so switching them on always takes effect.
 * @param x input [..., d_in]
 * @param w1 gate projection [d_in, d_hidden]
 * @param w2 up projection [d_in, d_hidden]
 * @param wOut down projection [d_hidden, d_out]
 * @returns [..., d_out]
 */
export function gatedMlp(x: tf.Tensor, w1: tf.Tensor2D, w2: tf.Tensor2D, wOut: tf.Tensor2D, opts: GatedMlpOptions = {}): tf.Tensor {
  const dIn = x.shape[x.shape.length - 1];
  if (w1.shape[0] !== dIn || w2.shape[0] !== dIn) {
    throw new Error(`gatedMlp: x has d_in ${dIn} but w1 is [${w1.shape.join(', ')}] and w2 is [${w2.shape.join(', ')}]`);
  }
  if (w1.shape[1] !== w2.shape[1] || wOut.shape[0] !== w1.shape[1]) {
    throw new Error(`gatedMlp: hidden sizes differ (w1 [${w1.shape.join(', ')}], w2 [${w2.shape.join(', ')}], wOut [${wOut.shape.join(', ')}])`);
  }
  const rules = opts.rules ?? {};
  const act = opts.act ?? silu;
  return tf.tidy(() => {
    const gate = (rules.identity ? withIdentityRule(act) : act)(linear(x, w1)); // [..., d_hidden]
    const up = linear(x, w2); // [..., d_hidden]
    const hidden = rules.half ? halfProduct(gate, up) : tf.mul(gate, up); // [..., d_hidden]
    return linear(hidden, wOut); // [..., d_out]
  });
}
