/**
 * Half-rule on the gated MLP of the model layer (`models/parts/mlp.ts`, SwiGLU / GeGLU): with
 * Half + Identity and no biases, relevance x ⊙ grad summed over the inputs equals the output
 * (conservation); plain gradients do not conserve it. The gradients are also checked against
 * float64 formulas.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { mlp } from '../../src/models/parts/mlp.ts';
import { NO_HOOK } from '../../src/models/parts/hooks.ts';
import type { ActivationName } from '../../src/models/config.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';
import type { RuleSet } from '../../src/rules/rules.ts';
import { geluNew } from '../helpers/naive-gpt2.ts';

const [N, D_IN, D_H, D_OUT] = [5, 12, 20, 7];

function normal(n: number, seed: number, std: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => std * Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r()));
}

const X = normal(N * D_IN, 1, 1);
const W1 = normal(D_IN * D_H, 2, 0.4);
const W2 = normal(D_IN * D_H, 3, 0.4);
const WO = normal(D_H * D_OUT, 4, 0.4);
const C = normal(N * D_OUT, 5, 1); // metric = Σ C ⊙ y (one scalar per row after summing over outputs)

const siluF64 = (v: number) => v / (1 + Math.exp(-v));

/** The gated MLP `(act(x W₁) ⊙ (x W₂)) W_out`, no biases, no hooks. */
function gatedMlp(x: tf.Tensor, w1: tf.Tensor2D, w2: tf.Tensor2D, wOut: tf.Tensor2D, rules: RuleSet, act: ActivationName): tf.Tensor {
  return mlp(x, { gateW: w1, inW: w2, outW: wOut }, act, 'mlp', NO_HOOK, rules);
}

/** Per-row output value m_n = Σ_o C[n,o] y[n,o], relevance Σ_i x ⊙ grad, and the gradient. */
function run(rules: RuleSet, act: ActivationName = 'silu'): { value: number[]; relevance: number[]; grad: Float32Array; y: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor2d(X, [N, D_IN]);
    const w1 = tf.tensor2d(W1, [D_IN, D_H]);
    const w2 = tf.tensor2d(W2, [D_IN, D_H]);
    const wo = tf.tensor2d(WO, [D_H, D_OUT]);
    const c = tf.tensor2d(C, [N, D_OUT]);
    const y = gatedMlp(x, w1, w2, wo, rules, act);
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(gatedMlp(a, w1, w2, wo, rules, act), c)))(x);
    const value = Array.from(tf.sum(tf.mul(y, c), 1).dataSync());
    const relevance = Array.from(tf.sum(tf.mul(x, g), 1).dataSync());
    return { value, relevance, grad: g.dataSync() as Float32Array, y: y.dataSync() as Float32Array };
  });
}

/** Float64 gradient of Σ C ⊙ y w.r.t. x, with the gate slope and each factor's weight as given. */
function referenceGrad(slope: (a: number) => number, actF: (a: number) => number, half: boolean): Float64Array {
  const g = new Float64Array(N * D_IN);
  for (let n = 0; n < N; n++) {
    const a = new Float64Array(D_H);
    const h = new Float64Array(D_H);
    for (let j = 0; j < D_H; j++)
      for (let i = 0; i < D_IN; i++) {
        a[j] += X[n * D_IN + i] * W1[i * D_H + j];
        h[j] += X[n * D_IN + i] * W2[i * D_H + j];
      }
    const dz = new Float64Array(D_H); // d metric / d hidden
    for (let j = 0; j < D_H; j++) for (let o = 0; o < D_OUT; o++) dz[j] += WO[j * D_OUT + o] * C[n * D_OUT + o];
    const f = half ? 0.5 : 1;
    for (let i = 0; i < D_IN; i++) {
      let s = 0;
      for (let j = 0; j < D_H; j++) s += f * dz[j] * (W1[i * D_H + j] * slope(a[j]) * h[j] + W2[i * D_H + j] * actF(a[j]));
      g[n * D_IN + i] = s;
    }
  }
  return g;
}

const tilde = (v: number) => v + (v >= 0 ? 1e-6 : -1e-6);

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]), `[${i}] ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(atol + rtol * Math.abs(want[i]));
}

describe('gated MLP (models/parts/mlp.ts)', () => {
  it('forward values are bit-for-bit the same with any rules and match float64', () => {
    const plain = run({}).y;
    for (const rules of [{ half: true }, { identity: true }, { half: true, identity: true }]) expect(Array.from(run(rules).y)).toEqual(Array.from(plain));
    // float64 forward
    const want: number[] = [];
    for (let n = 0; n < N; n++) {
      const hid = Array.from({ length: D_H }, (_, j) => {
        let a = 0;
        let h = 0;
        for (let i = 0; i < D_IN; i++) {
          a += X[n * D_IN + i] * W1[i * D_H + j];
          h += X[n * D_IN + i] * W2[i * D_H + j];
        }
        return siluF64(a) * h;
      });
      for (let o = 0; o < D_OUT; o++) want.push(hid.reduce((s, v, j) => s + v * WO[j * D_OUT + o], 0));
    }
    expectClose(plain, want, 1e-5, 1e-6);
  });

  it('gradients match float64 formulas: plain, Half (½ each factor), Identity (slope act(a)/ã), both', () => {
    const dSilu = (a: number) => {
      const s = 1 / (1 + Math.exp(-a));
      return s + a * s * (1 - s);
    };
    const secant = (a: number) => siluF64(a) / tilde(a);
    expectClose(run({}).grad, referenceGrad(dSilu, siluF64, false), 1e-4, 1e-5);
    expectClose(run({ half: true }).grad, referenceGrad(dSilu, siluF64, true), 1e-4, 1e-5);
    expectClose(run({ identity: true }).grad, referenceGrad(secant, siluF64, false), 1e-4, 1e-5);
    expectClose(run({ half: true, identity: true }).grad, referenceGrad(secant, siluF64, true), 1e-4, 1e-5);
  });

  for (const [label, act] of [
    ['SiLU', 'silu'],
    ['GELU (tanh)', 'gelu_new'],
  ] as const) {
    it(`${label}: with Half + Identity, Σ x ⊙ grad equals the output per row; plain gradients do not`, () => {
      const ruled = run({ half: true, identity: true }, act);
      ruled.value.forEach((v, n) => {
        // Exact up to float32 and the 1e-6 stabiliser.
        expect(Math.abs(ruled.relevance[n] - v), `row ${n}: relevance ${ruled.relevance[n]} vs output ${v}`).toBeLessThanOrEqual(1e-4 * Math.abs(v) + 1e-5);
      });
      // Either rule alone breaks it, and so do plain gradients (deviations of several % and more, ≫ the 1e-4 tolerance).
      for (const rules of [{}, { half: true }, { identity: true }]) {
        const r = run(rules, act);
        const dev = Math.max(...r.value.map((v, n) => Math.abs(r.relevance[n] - v) / Math.abs(v)));
        expect(dev, JSON.stringify(rules)).toBeGreaterThan(0.02);
      }
    });
  }

  it('the Identity-rule slope is the float64 act(a)/ã for GELU too', () => {
    const secant = (a: number) => geluNew(a) / tilde(a);
    expectClose(run({ identity: true }, 'gelu_new').grad, referenceGrad(secant, geluNew, false), 1e-4, 1e-5);
  });

  it('leaks no tensors', () => {
    const before = tf.memory().numTensors;
    run({ half: true, identity: true });
    expect(tf.memory().numTensors).toBe(before);
  });
});
