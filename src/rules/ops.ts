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

/**
 * Stabiliser of the Identity-rule: x̃ = x + (1[x=0] + sign(x))·1e-6, i.e. x + 1e-6 for x ≥ 0 and
 * x − 1e-6 for x < 0. Written without `tf.sign`: on the wasm backend `tf.sign` returns 0 for
 * |x| ≤ 1e-7, which would silently drop the stabiliser there.
 */
export function stabilise(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.add(x, tf.sub(tf.mul(tf.cast(tf.greaterEqual(x, 0), 'float32'), 2e-6), 1e-6)));
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

/**
 * Sum a gradient over the axes an operand was broadcast along, so it has the operand's shape
 * (tfjs rejects a custom gradient whose shape differs from its input's).
 */
function reduceToShape(g: tf.Tensor, shape: number[]): tf.Tensor {
  if (g.rank === shape.length && g.shape.every((s, i) => s === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return tf.reshape(tf.sum(g, axes), shape);
}

/** Swap the last two axes. */
function swapLastTwo(x: tf.Tensor): tf.Tensor {
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  perm[x.rank - 1] = x.rank - 2;
  perm[x.rank - 2] = x.rank - 1;
  return tf.transpose(x, perm);
}

/**
 * Half-rule for a gate `a ⊙ b` (broadcasting allowed): forward the product, each factor gets
 * half its gradient.
 */
export const halfProduct: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = custom<never>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.mul(a, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        reduceToShape(tf.mul(tf.mul(dy, saved[1]), 0.5), saved[0].shape),
        reduceToShape(tf.mul(tf.mul(dy, saved[0]), 0.5), saved[1].shape),
      ],
    };
  },
) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/**
 * Uniform rule for a bilinear matmul `a @ b` (plain, no transpose flags): forward the product,
 * each factor gets half its ordinary gradient. Shapes: a [..., m, k], b [..., k, n] (batch axes
 * may broadcast, as in `tf.matMul`).
 */
export const uniformMatMul: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = custom<never>(
  (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved;
        const da = reduceToShape(tf.matMul(dy, swapLastTwo(sb)), sa.shape);
        const db = reduceToShape(tf.matMul(swapLastTwo(sa), dy), sb.shape);
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
