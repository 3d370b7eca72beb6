/**
 * The LRP rule ops: forward values bit-for-bit equal to the unmodified ops, and each backward
 * equal to its formula, recomputed in float64 here (or, for uniformMatMul, against tf.grads of
 * tf.matMul).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { halfProduct, identityRule, stabilise, stopGradient, taylorSoftmax, uniformMatMul } from '../../src/rules/ops.ts';
import { geluExact as tfGeluExact, geluNew as tfGeluNew } from '../../src/models/parts/activations.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';
import { geluExact, geluNew } from '../helpers/naive-gpt2.ts';

/** Random values in [-3, 3) with some exact zeros and tiny values mixed in. */
function randomWithZeros(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r();
    a[i] = u < 0.1 ? 0 : u < 0.15 ? (r() - 0.5) * 1e-6 : (r() * 2 - 1) * 3;
  }
  return a;
}

/** x̃ = x + (1[x=0] + sign(x))·1e-6 in float64. */
const tilde = (x: number) => x + ((x === 0 ? 1 : 0) + Math.sign(x)) * 1e-6;

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, label: string): void {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) throw new Error(`${label}[${i}]: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

const bits = (t: tf.Tensor) => Array.from(t.dataSync());

describe('stopGradient', () => {
  it('forwards the value bit for bit and passes a zero gradient', () => {
    const x = tf.tensor(randomWithZeros(24, 1), [4, 6]);
    const dy = tf.randomNormal([4, 6]);
    const y = stopGradient(x);
    expect(bits(y)).toEqual(bits(x));
    const [g] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(stopGradient(a), dy)))([x]);
    expect(bits(g).every((v) => v === 0)).toBe(true);
    tf.dispose([x, dy, y, g]);
  });
});

describe('stabilise', () => {
  it('is x + (1[x=0] + sign(x))·1e-6', () => {
    const data = randomWithZeros(50, 2);
    const got = tf.tidy(() => stabilise(tf.tensor1d(data)).dataSync());
    expectClose(got, Array.from(data, tilde), 1e-6, 1e-12, 'x̃');
    // Tiny values and −0 (tf.sign on wasm returns 0 for |x| ≤ 1e-7, so this is checked explicitly).
    const tiny = [1e-8, -1e-8, 1e-7, -1e-7, 1e-30, -0, 0];
    const gotTiny = tf.tidy(() => stabilise(tf.tensor1d(tiny)).dataSync());
    expectClose(gotTiny, tiny.map((v) => v + (v < 0 ? -1e-6 : 1e-6)), 1e-6, 1e-13, 'x̃ tiny');
    // Never zero, and the sign of x is kept.
    data.forEach((v, i) => {
      expect(got[i]).not.toBe(0);
      if (v !== 0) expect(Math.sign(got[i])).toBe(Math.sign(v));
    });
  });
});

describe('identityRule', () => {
  for (const [label, tfAct, ref] of [
    ['gelu_new', tfGeluNew, geluNew],
    ['gelu (erf)', tfGeluExact, geluExact],
  ] as const) {
    it(`${label}: forward bit-equal to the activation, gradient = dy·act(x)/x̃ (exact zeros included)`, () => {
      const xData = randomWithZeros(200, 3);
      const dyData = randomWithZeros(200, 4).map((v) => v + 0.5);
      const rule = identityRule(tfAct);
      const before = tf.memory().numTensors;
      const [yRule, yPlain, g] = tf.tidy(() => {
        const x = tf.tensor2d(xData, [10, 20]);
        const dy = tf.tensor2d(dyData, [10, 20]);
        const [gx] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(rule(a), dy)))([x]);
        return [bits(rule(x)), bits(tfAct(x)), bits(gx)];
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(yRule).toEqual(yPlain);
      // Float64 formula from the float32 inputs; act(x) from the independent float64 activation.
      const want = Array.from(xData, (x, i) => (dyData[i] * ref(x)) / tilde(x));
      expectClose(g, want, 2e-5, 1e-6, `${label} grad`);
      xData.forEach((x, i) => {
        if (x === 0) expect(Math.abs(g[i])).toBe(0); // act(0) = 0
      });
      // For |x| ≫ 1e-6 this is the secant slope act(x)/x, not the derivative: check it differs from tf.grad.
      const plain = tf.tidy(() => bits(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tfAct(a), tf.tensor2d(dyData, [10, 20]))))(tf.tensor2d(xData, [10, 20]))));
      expect(Math.max(...plain.map((v, i) => Math.abs(v - g[i])))).toBeGreaterThan(0.1);
    });
  }
});

describe('halfProduct', () => {
  it('forward bit-equal to a ⊙ b; gradients dy·b/2 and dy·a/2', () => {
    const aData = randomWithZeros(60, 5);
    const bData = randomWithZeros(60, 6);
    const dyData = randomWithZeros(60, 7);
    const [y, yPlain, ga, gb] = tf.tidy(() => {
      const a = tf.tensor2d(aData, [6, 10]);
      const b = tf.tensor2d(bData, [6, 10]);
      const dy = tf.tensor2d(dyData, [6, 10]);
      const g = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(halfProduct(x, z), dy)))([a, b]);
      return [bits(halfProduct(a, b)), bits(tf.mul(a, b)), bits(g[0]), bits(g[1])];
    });
    expect(y).toEqual(yPlain);
    expectClose(ga, Array.from(dyData, (d, i) => (d * bData[i]) / 2), 1e-6, 1e-7, 'da');
    expectClose(gb, Array.from(dyData, (d, i) => (d * aData[i]) / 2), 1e-6, 1e-7, 'db');
  });

  it('broadcasting operands get gradients of their own shape (summed over broadcast axes)', () => {
    const aData = randomWithZeros(12, 8);
    const bData = randomWithZeros(4, 9);
    const [ga, gb] = tf.tidy(() => {
      const g = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(halfProduct(x, z)))([tf.tensor2d(aData, [3, 4]), tf.tensor1d(bData)]);
      expect(g[0].shape).toEqual([3, 4]);
      expect(g[1].shape).toEqual([4]);
      return [bits(g[0]), bits(g[1])];
    });
    expectClose(ga, Array.from(aData, (_, i) => bData[i % 4] / 2), 1e-6, 1e-7, 'da');
    expectClose(gb, Array.from(bData, (_, j) => (aData[j] + aData[4 + j] + aData[8 + j]) / 2), 1e-6, 1e-7, 'db');
  });
});

describe('uniformMatMul', () => {
  const cases: Array<[string, number[], number[]]> = [
    ['2-D', [5, 7], [7, 3]],
    ['batched 3-D', [2, 5, 7], [2, 7, 3]],
    ['4-D (attention [b, h, q, k])', [2, 3, 4, 5], [2, 3, 5, 4]],
    ['broadcast batch', [1, 4, 6], [3, 6, 2]],
    ['mixed rank', [2, 4, 6], [6, 2]],
  ];
  for (const [label, aShape, bShape] of cases) {
    it(`${label}: forward bit-equal to tf.matMul, gradients half of tf.grads(tf.matMul)`, () => {
      const n = (s: number[]) => s.reduce((x, y) => x * y, 1);
      const aData = randomWithZeros(n(aShape), 10);
      const bData = randomWithZeros(n(bShape), 11);
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const a = tf.tensor(aData, aShape);
        const b = tf.tensor(bData, bShape);
        const y = uniformMatMul(a, b);
        const yPlain = tf.matMul(a, b);
        expect(bits(y)).toEqual(bits(yPlain));
        const dy = tf.randomNormal(yPlain.shape, 0, 1, 'float32', 3);
        const g = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(uniformMatMul(x, z), dy)))([a, b]);
        // Reference: the ordinary gradient, with operands broadcast explicitly first (tfjs's own
        // BatchMatMul gradient rejects broadcast batch axes).
        const full = (s: number[]) => [...yPlain.shape.slice(0, -2), ...s.slice(-2)];
        const gp = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(tf.matMul(tf.broadcastTo(x, full(aShape)), tf.broadcastTo(z, full(bShape))), dy)))([a, b]);
        for (let i = 0; i < 2; i++) {
          expect(g[i].shape).toEqual(gp[i].shape);
          expectClose(bits(g[i]), bits(gp[i]).map((v) => v / 2), 1e-5, 1e-6, `${label} grad ${i}`);
        }
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('taylorSoftmax', () => {
  it('forward bit-equal to tf.softmax; gradient = (x ⊙ (s⊙dy − s·Σ(s⊙dy))) / x̃', () => {
    const [rows, cols] = [8, 6];
    const xData = randomWithZeros(rows * cols, 12);
    // A masked row entry as in the model's causal mask.
    xData[5] = -1e9;
    const dyData = randomWithZeros(rows * cols, 13);
    const [y, yPlain, g] = tf.tidy(() => {
      const x = tf.tensor2d(xData, [rows, cols]);
      const dy = tf.tensor2d(dyData, [rows, cols]);
      const [gx] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(taylorSoftmax(a), dy)))([x]);
      return [bits(taylorSoftmax(x)), bits(tf.softmax(x)), bits(gx)];
    });
    expect(y).toEqual(yPlain);
    // Float64 reference: softmax, then the formula.
    const want: number[] = [];
    for (let r = 0; r < rows; r++) {
      const xr = Array.from(xData.slice(r * cols, (r + 1) * cols));
      const mx = Math.max(...xr);
      const e = xr.map((v) => Math.exp(v - mx));
      const z = e.reduce((a, b) => a + b, 0);
      const s = e.map((v) => v / z);
      const rOut = s.map((v, j) => v * dyData[r * cols + j]);
      const sum = rOut.reduce((a, b) => a + b, 0);
      xr.forEach((v, j) => want.push((v * (rOut[j] - s[j] * sum)) / tilde(v)));
    }
    expectClose(g, want, 1e-4, 1e-6, 'taylor softmax grad');
  });

  it('in gradient form it is the ordinary softmax gradient scaled by x/x̃ (≈ 1 away from 0)', () => {
    // Documents what the rule amounts to: R_in/x̃ = x ⊙ (ordinary gradient)/x̃. This matches LXT's
    // efficient AttnLRP, which leaves softmax's gradient unmodified.
    const xData = randomWithZeros(30, 14).map((v) => (v === 0 ? 0.5 : v));
    const [g, gp] = tf.tidy(() => {
      const x = tf.tensor2d(xData, [5, 6]);
      const dy = tf.randomNormal([5, 6], 0, 1, 'float32', 4);
      return [bits(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(taylorSoftmax(a), dy)))(x)), bits(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.softmax(a), dy)))(x))];
    });
    expectClose(
      g,
      gp.map((v, i) => (v * xData[i]) / tilde(xData[i])),
      1e-4,
      1e-7,
      'taylor vs plain',
    );
  });
});
