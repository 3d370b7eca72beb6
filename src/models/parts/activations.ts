/**
 * MLP activations, plain and with the LRP Identity-rule (forward unchanged, gradient act(x)/x̃).
 */
import * as tf from '@tensorflow/tfjs';
import type { ActivationName } from '../config.ts';
import { identityRule } from '../../rules/ops.ts';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh approximation (HF `gelu_new`, `gelu_pytorch_tanh`), computed as x·σ(2u),
 * u = √(2/π)(x + 0.044715x³), which equals 0.5·x·(1 + tanh u). Why: on wasm, sigmoid is a
 * vectorised XNNPACK kernel while tanh and pow are scalar loops; this form is ~16× faster and
 * differs by ≤ 3e-7.
 */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const c = 2 * SQRT_2_OVER_PI;
  return tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), c * 0.044715), c))));
}

/** GELU, exact erf form (HF `gelu`). */
export function geluExact(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** SiLU (swish): x · sigmoid(x), the gate activation of SwiGLU MLPs. */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** ReLU. */
export function relu(x: tf.Tensor): tf.Tensor {
  return tf.relu(x);
}

const PLAIN: Record<ActivationName, (x: tf.Tensor) => tf.Tensor> = {
  gelu_new: geluNew,
  gelu_tanh: geluNew,
  gelu: geluExact,
  silu,
  relu,
};

// Built once: customGrad wrappers are cheap to call but not to create.
const IDENTITY: Record<ActivationName, (x: tf.Tensor) => tf.Tensor> = {
  gelu_new: identityRule(geluNew),
  gelu_tanh: identityRule(geluNew),
  gelu: identityRule(geluExact),
  silu: identityRule(silu),
  relu: identityRule(relu),
};

/** The activation function, with the Identity-rule when `identity` is set. */
export function activation(name: ActivationName, identity = false): (x: tf.Tensor) => tf.Tensor {
  return (identity ? IDENTITY : PLAIN)[name];
}
