/**
 * The MLP part: plain `act(x W_in + b_in) W_out + b_out`, or gated
 * `(act(x W_gate + b_gate) ⊙ (x W_in + b_in)) W_out + b_out` (SwiGLU / GeGLU).
 * Rules: the Identity-rule on `act`, and on gated MLPs the Half-rule on the product (each factor
 * gets half its gradient; forward values unchanged).
 * Hooks: `mlp.hook_pre` (the activation's input: the gate pre-activation for gated MLPs),
 * `mlp.hook_pre_linear` (the up projection, gated only), `mlp.hook_post` (what W_out reads), all [b, p, d_mlp].
 */
import * as tf from '@tensorflow/tfjs';
import type { ActivationName } from '../config.ts';
import type { RuleSet } from '../../rules/rules.ts';
import { halfProduct } from '../../rules/ops.ts';
import { activation } from './activations.ts';
import { linear } from './linear.ts';
import type { HookRunner } from './hooks.ts';

/** MLP weights in forward layout. */
export interface MlpWeights {
  /** Up projection [d, m] (the only input projection of a plain MLP). */
  inW: tf.Tensor2D;
  inB?: tf.Tensor1D;
  /** Gate projection [d, m] (gated only). */
  gateW?: tf.Tensor2D;
  gateB?: tf.Tensor1D;
  /** Down projection [m, d]. */
  outW: tf.Tensor2D;
  outB?: tf.Tensor1D;
}

/** MLP forward. x [b, p, d] → [b, p, d]. */
export function mlp(x: tf.Tensor, w: MlpWeights, act: ActivationName, prefix: string, hook: HookRunner, rules: RuleSet): tf.Tensor {
  const f = activation(act, !!rules.identity);
  if (!w.gateW) {
    const pre = hook(`${prefix}.hook_pre`, linear(x, w.inW, w.inB)); // [b, p, m]
    const post = hook(`${prefix}.hook_post`, f(pre)); // [b, p, m]
    return linear(post, w.outW, w.outB); // [b, p, d]
  }
  const pre = hook(`${prefix}.hook_pre`, linear(x, w.gateW, w.gateB)); // [b, p, m]
  const preLinear = hook(`${prefix}.hook_pre_linear`, linear(x, w.inW, w.inB)); // [b, p, m]
  const gate = f(pre);
  const post = hook(`${prefix}.hook_post`, rules.half ? halfProduct(gate, preLinear) : tf.mul(gate, preLinear)); // [b, p, m]
  return linear(post, w.outW, w.outB); // [b, p, d]
}
