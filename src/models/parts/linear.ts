/**
 * Dense projections as 2-D matmuls: the wasm backend's batched 3-D matmul is ~50× slower than
 * its 2-D kernel for large matrices, so inputs are flattened to [rows, in] first.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Weights multiplied once per upload (a streamed block's matrices). The wasm matmul hands its
 * right operand to XNNPACK, which packs a copy of it and keeps that copy until the tensor is
 * freed: right for resident weights (packed once, reused by every pass), but for a block that is
 * uploaded, used once and freed it doubles the block in the heap and the packing is paid on
 * every upload. Measured on Llama-3-8B-shaped blocks: the heap grew block by block to 4.1 GB with
 * packed copies, and stayed at 1.9 GB without.
 */
const usedOnce = new WeakSet<tf.Tensor>();

/** Mark `w` as multiplied once per upload (a streamed block's matrix: no packed copy); only the wasm backend packs. */
export function markUsedOnce(w: tf.Tensor2D): void {
  if (tf.getBackend() === 'wasm') usedOnce.add(w);
}

/**
 * x2 · W with W as XNNPACK's left operand: y = (Wᵀ · x2ᵀ)ᵀ, where Wᵀ is a transient transpose
 * freed at once and the small x2ᵀ is what gets packed. The gradient dx = dy · Wᵀ takes the wasm
 * A·Bᵀ swap (W the left operand again), so the tape keeps no transposed or packed copy either.
 * x2 [rows, in], W [in, out] → [rows, out].
 */
function matMulOnce(x2: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const body = (x: tf.Tensor) => {
    const wT = tf.transpose(w); // [out, in]
    const yT = tf.matMul(wT, x as tf.Tensor2D, false, true); // [out, rows]
    const value = tf.transpose(yT); // [rows, out]
    tf.dispose([wT, yT]);
    return { value, gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, w, false, true) }; // [rows, in]
  };
  // Built per call: W is closed over, not an input, so no gradient (a zero tensor the size of W) is made for it.
  return tf.customGrad(body as unknown as Parameters<typeof tf.customGrad>[0])(x2) as tf.Tensor2D;
}

/** y = x @ W + b on the last axis, via a 2-D matmul. x [..., in] → [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const lead = x.shape.slice(0, -1);
  const x2 = tf.reshape(x, [-1, x.shape[x.shape.length - 1]]) as tf.Tensor2D;
  let y: tf.Tensor = usedOnce.has(w) ? matMulOnce(x2, w) : tf.matMul(x2, w);
  // Never tf.fused.matMul with a bias: it is wrong on batched inputs on wasm.
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...lead, w.shape[1]]);
}
