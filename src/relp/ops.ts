/**
 * The tensor ops behind the LRP rules. Each one computes the ordinary forward value with the
 * same kernels as the unmodified op (so forward values are bit-for-bit equal) and overrides
 * only the gradient through `tf.customGrad`.
 */
import * as tf from '@tensorflow/tfjs';

type CustomFn = Parameters<typeof tf.customGrad>[0];
/** `tf.customGrad` with a loosely typed body (its declared input type is a union that strict TS rejects). */
function custom<F>(f: (...args: never[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] }): F {
  return tf.customGrad(f as unknown as CustomFn) as unknown as F;
}

/** Identity in forward, zero gradient in backward. */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = custom<never>((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as (x: tf.Tensor) => tf.Tensor;

/** Stabiliser of the Identity-rule: x̃ = x + (1[x=0] + sign(x))·1e-6. */
export function stabilise(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.add(x, tf.mul(tf.add(tf.cast(tf.equal(x, 0), 'float32'), tf.sign(x)), 1e-6)));
}

/**
 * Identity-rule for an elementwise activation: forward `act(x)`, gradient `dy · act(x)/x̃`.
 * @param act the activation (e.g. GELU), applied with the ordinary kernels.
 */
export function identityRule(act: (x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
  return custom<never>((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const y = act(x);
    save([x, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ys] = saved;
        return tf.mul(dy, tf.div(ys, stabilise(xs)));
      },
    };
  }) as unknown as (x: tf.Tensor) => tf.Tensor;
}

/** Half-rule for a gate `a ⊙ b`: forward the product, each factor gets half its gradient. */
export const halfProduct: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = custom<never>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.mul(a, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(tf.mul(dy, saved[1]), 0.5), tf.mul(tf.mul(dy, saved[0]), 0.5)],
    };
  },
) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/**
 * Uniform rule for a bilinear matmul `a @ b` (plain, no transpose flags): forward the product,
 * each factor gets half its ordinary gradient. Shapes: a [..., m, k], b [..., k, n].
 */
export const uniformMatMul: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = custom<never>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved;
        const r = sa.rank;
        const perm = Array.from({ length: r }, (_, i) => i);
        perm[r - 1] = r - 2;
        perm[r - 2] = r - 1;
        const da = tf.matMul(dy, tf.transpose(sb, perm));
        const db = tf.matMul(tf.transpose(sa, perm), dy);
        return [tf.mul(da, 0.5), tf.mul(db, 0.5)];
      },
    };
  },
) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/**
 * Softmax over the last axis with the AttnLRP Taylor rule in gradient form:
 * R_out = s ⊙ dy, R_in = x ⊙ (R_out − s·ΣR_out), gradient = R_in / x̃.
 */
export const taylorSoftmax: (x: tf.Tensor) => tf.Tensor = custom<never>((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const s = tf.softmax(x);
  save([x, s]);
  return {
    value: s,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ss] = saved;
      const rOut = tf.mul(ss, dy);
      const rIn = tf.mul(xs, tf.sub(rOut, tf.mul(ss, tf.sum(rOut, -1, true))));
      return tf.div(rIn, stabilise(xs));
    },
  };
}) as unknown as (x: tf.Tensor) => tf.Tensor;
