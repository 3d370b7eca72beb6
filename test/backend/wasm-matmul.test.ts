/**
 * The wasm transposed-matmul fix: transposed matmuls (2-D, batched 3-D, fused) give the same values
 * as the plain kernel on explicitly transposed operands and as a float64 recomputation, their
 * gradients are right, and the fix leaks no backend buffers.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { installWasmMatmulFix, wasmMatmulFixInstalled } from '../../src/backend/wasm-matmul.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';

function randArray(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * 2 - 1;
  return a;
}

/** Plain float64 (batched) matmul of row-major data. a [B, m, k] (or its transpose), b [B, k, n]. */
function naiveMatMul(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  tA: boolean,
  tB: boolean,
): { data: Float64Array; shape: number[] } {
  const batched = aShape.length === 3;
  const B = batched ? aShape[0] : 1;
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const m = tA ? ac : ar;
  const k = tA ? ar : ac;
  const n = tB ? br : bc;
  const out = new Float64Array(B * m * n);
  for (let z = 0; z < B; z++) {
    const ao = z * ar * ac;
    const bo = z * br * bc;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) {
          const av = tA ? a[ao + t * ac + i] : a[ao + i * ac + t];
          const bv = tB ? b[bo + j * bc + t] : b[bo + t * bc + j];
          s += av * bv;
        }
        out[z * m * n + i * n + j] = s;
      }
  }
  return { data: out, shape: batched ? [B, m, n] : [m, n] };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Swap the last two axes. */
function tr(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[perm.length - 1], perm[perm.length - 2]] = [perm[perm.length - 2], perm[perm.length - 1]];
  return tf.transpose(x, perm);
}

const CASES: Array<{ label: string; batch?: number; m: number; k: number; n: number }> = [
  { label: '2-D', m: 7, k: 13, n: 5 },
  { label: '2-D larger', m: 33, k: 64, n: 48 },
  { label: 'batched 3-D', batch: 3, m: 6, k: 11, n: 9 },
];

describe('wasm matmul fix', () => {
  it('is installed when wasm is the backend, and installing again is a no-op', () => {
    if (tf.getBackend() !== 'wasm') return; // nothing to check on other backends
    expect(wasmMatmulFixInstalled()).toBe(true);
    const before = tf.getKernel('BatchMatMul', 'wasm');
    installWasmMatmulFix();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(before);
  });

  for (const c of CASES) {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      it(`${c.label} transposeA=${tA} transposeB=${tB}: equals the plain kernel on transposed operands and float64`, () => {
        const lead = c.batch ? [c.batch] : [];
        const aShape = [...lead, ...(tA ? [c.k, c.m] : [c.m, c.k])];
        const bShape = [...lead, ...(tB ? [c.n, c.k] : [c.k, c.n])];
        const aData = randArray(aShape.reduce((x, y) => x * y), 11);
        const bData = randArray(bShape.reduce((x, y) => x * y), 12);
        const start = tf.memory().numTensors;
        const [got, plain] = tf.tidy(() => {
          const a = tf.tensor(aData, aShape);
          const b = tf.tensor(bData, bShape);
          const g = tf.matMul(a, b, tA, tB);
          // Plain kernel: transpose explicitly, no flags.
          const p = tf.matMul(tA ? tr(a) : a, tB ? tr(b) : b);
          return [g.dataSync().slice(), p.dataSync().slice()];
        });
        expect(tf.memory().numTensors).toBe(start);
        const ref = naiveMatMul(aData, aShape, bData, bShape, tA, tB);
        // The fix transposes and calls the plain kernel, so it must agree bit for bit.
        expect(Array.from(got)).toEqual(Array.from(plain));
        expect(maxAbsDiff(got, ref.data)).toBeLessThan(1e-5 * c.k);
      });
    }
  }

  it('fused matmul (bias + relu) with transposed operands equals the plain computation', () => {
    const [m, k, n] = [9, 14, 6];
    const aData = randArray(k * m, 21);
    const bData = randArray(n * k, 22);
    const biasData = randArray(n, 23);
    const [got, plain] = tf.tidy(() => {
      const a = tf.tensor2d(aData, [k, m]);
      const b = tf.tensor2d(bData, [n, k]);
      const bias = tf.tensor1d(biasData);
      const g = tf.fused.matMul({ a, b, transposeA: true, transposeB: true, bias, activation: 'relu' });
      const p = tf.relu(tf.add(tf.matMul(tf.transpose(a), tf.transpose(b)), bias));
      return [g.dataSync().slice(), p.dataSync().slice()];
    });
    const ref = naiveMatMul(aData, [k, m], bData, [n, k], true, true);
    const refAct = Array.from(ref.data, (v, i) => Math.max(0, v + biasData[i % n]));
    expect(maxAbsDiff(got, refAct)).toBeLessThan(1e-5);
    expect(maxAbsDiff(got, plain)).toBeLessThan(1e-6);
  });

  it('gradients of matmul (all flag combinations, 2-D and batched) match the float64 formulas', () => {
    for (const batch of [undefined, 2]) {
      for (const [tA, tB] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const [m, k, n] = [5, 8, 4];
        const lead = batch ? [batch] : [];
        const aShape = [...lead, ...(tA ? [k, m] : [m, k])];
        const bShape = [...lead, ...(tB ? [n, k] : [k, n])];
        const aData = randArray(aShape.reduce((x, y) => x * y), 31);
        const bData = randArray(bShape.reduce((x, y) => x * y), 32);
        const B = batch ?? 1;
        const wData = randArray(B * m * n, 33); // loss = Σ w ⊙ (a b)
        const [ga, gb] = tf.tidy(() => {
          const a = tf.tensor(aData, aShape);
          const b = tf.tensor(bData, bShape);
          const w = tf.tensor(wData, [...lead, m, n]);
          const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, tA, tB), w)))([a, b]);
          return [g[0].dataSync().slice(), g[1].dataSync().slice()];
        });
        // d loss / d A_eff = W B_effᵀ, d loss / d B_eff = A_effᵀ W, in float64; transposed back when flagged.
        const refA = new Float64Array(ga.length);
        const refB = new Float64Array(gb.length);
        const [ar, ac] = aShape.slice(-2);
        const [br, bc] = bShape.slice(-2);
        const Aeff = (z: number, i: number, t: number) => (tA ? aData[z * ar * ac + t * ac + i] : aData[z * ar * ac + i * ac + t]);
        const Beff = (z: number, t: number, j: number) => (tB ? bData[z * br * bc + j * bc + t] : bData[z * br * bc + t * bc + j]);
        for (let z = 0; z < B; z++) {
          for (let i = 0; i < m; i++)
            for (let t = 0; t < k; t++) {
              let s = 0;
              for (let j = 0; j < n; j++) s += wData[z * m * n + i * n + j] * Beff(z, t, j);
              refA[z * ar * ac + (tA ? t * ac + i : i * ac + t)] = s;
            }
          for (let t = 0; t < k; t++)
            for (let j = 0; j < n; j++) {
              let s = 0;
              for (let i = 0; i < m; i++) s += Aeff(z, i, t) * wData[z * m * n + i * n + j];
              refB[z * br * bc + (tB ? j * bc + t : t * bc + j)] = s;
            }
        }
        expect(maxAbsDiff(ga, refA), `dA batch=${batch} tA=${tA} tB=${tB}`).toBeLessThan(1e-5);
        expect(maxAbsDiff(gb, refB), `dB batch=${batch} tA=${tA} tB=${tB}`).toBeLessThan(1e-5);
      }
    }
  });

  it('leaks no backend buffers (the temporary transposes are freed)', () => {
    const a = tf.tensor2d(randArray(12 * 10, 41), [12, 10]);
    const b = tf.tensor2d(randArray(7 * 12, 42), [7, 12]);
    const backend = tf.backend();
    const ids0 = backend.numDataIds();
    const t0 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const y = tf.matMul(a, b, true, true);
      y.dataSync();
      y.dispose();
      const g = tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.matMul(x, w, true, true)))([a, b]);
      g.forEach((t) => t.dispose());
    }
    expect(tf.memory().numTensors).toBe(t0);
    expect(backend.numDataIds()).toBe(ids0);
    a.dispose();
    b.dispose();
  });
});
