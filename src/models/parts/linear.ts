/**
 * Dense projections as 2-D matmuls: the wasm backend's batched 3-D matmul is ~50× slower than
 * its 2-D kernel for large matrices, so inputs are flattened to [rows, in] first.
 */
import * as tf from '@tensorflow/tfjs';

/** y = x @ W + b on the last axis, via a 2-D matmul. x [..., in] → [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const lead = x.shape.slice(0, -1);
  const x2 = tf.reshape(x, [-1, x.shape[x.shape.length - 1]]);
  let y: tf.Tensor = tf.matMul(x2, w);
  // Never tf.fused.matMul with a bias: it is wrong on batched inputs on wasm.
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...lead, w.shape[1]]);
}
