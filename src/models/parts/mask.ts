/**
 * Additive attention masks [pos, prefix + pos]: query i (absolute position prefix + i) sees keys
 * j ≤ prefix + i, and with a sliding window only j > prefix + i − window. 0 where allowed, −1e9
 * elsewhere (finite, so LRP rules never see ∞).
 */
import * as tf from '@tensorflow/tfjs';

/** Causal (and optionally sliding-window) mask [pos, prefix + pos]. */
export function causalMask(pos: number, prefix = 0, window?: number): tf.Tensor2D {
  const keys = prefix + pos;
  const data = new Float32Array(pos * keys);
  for (let i = 0; i < pos; i++) {
    const q = prefix + i;
    for (let j = 0; j < keys; j++) if (j > q || (window !== undefined && j <= q - window)) data[i * keys + j] = -1e9;
  }
  return tf.tensor2d(data, [pos, keys]);
}
