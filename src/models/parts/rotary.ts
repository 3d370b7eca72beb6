/**
 * Rotary position embeddings, HF `rotate_half` convention: the first `rotaryDim` dims of each
 * head are split in halves x₁, x₂ and x ↦ x·cos + (−x₂, x₁)·sin, with angle
 * pos · θ^(−2i/rotaryDim) for i < rotaryDim/2, repeated for both halves (`emb = cat(freqs, freqs)`).
 * The remaining dims pass through (GPT-NeoX partial rotary).
 */
import * as tf from '@tensorflow/tfjs';

/** cos and sin tables [nCtx, rotaryDim] (float64 angles, rounded once to float32). */
export interface RotaryTables {
  cos: tf.Tensor2D;
  sin: tf.Tensor2D;
}

/** Build the tables for positions 0..nCtx−1. */
export function rotaryTables(nCtx: number, rotaryDim: number, theta: number): RotaryTables {
  const half = rotaryDim / 2;
  const cos = new Float32Array(nCtx * rotaryDim);
  const sin = new Float32Array(nCtx * rotaryDim);
  for (let p = 0; p < nCtx; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * Math.pow(theta, (-2 * i) / rotaryDim);
      cos[p * rotaryDim + i] = cos[p * rotaryDim + half + i] = Math.cos(a);
      sin[p * rotaryDim + i] = sin[p * rotaryDim + half + i] = Math.sin(a);
    }
  }
  return { cos: tf.tensor2d(cos, [nCtx, rotaryDim]), sin: tf.tensor2d(sin, [nCtx, rotaryDim]) };
}

/**
 * Rotate q or k. x [b, p, heads, dh] at absolute positions start..start+p−1 → [b, p, heads, dh].
 */
export function applyRotary(x: tf.Tensor, t: RotaryTables, start: number): tf.Tensor {
  const [b, p, h, dh] = x.shape as [number, number, number, number];
  const rd = t.cos.shape[1];
  const cos = tf.reshape(tf.slice(t.cos, [start, 0], [p, rd]), [1, p, 1, rd]);
  const sin = tf.reshape(tf.slice(t.sin, [start, 0], [p, rd]), [1, p, 1, rd]);
  const xr = rd === dh ? x : tf.slice(x, [0, 0, 0, 0], [b, p, h, rd]); // [b, p, h, rd]
  const x1 = tf.slice(xr, [0, 0, 0, 0], [b, p, h, rd / 2]);
  const x2 = tf.slice(xr, [0, 0, 0, rd / 2], [b, p, h, rd / 2]);
  const rot = tf.concat([tf.neg(x2), x1], 3); // rotate_half
  const y = tf.add(tf.mul(xr, cos), tf.mul(rot, sin));
  return rd === dh ? y : tf.concat([y, tf.slice(x, [0, 0, 0, rd], [b, p, h, dh - rd])], 3);
}
