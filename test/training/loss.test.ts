import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { nextTokenLoss } from '../../src/training/loss.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';

/** Plain-JS masked next-token cross-entropy in float64. */
function naiveLoss(logits: number[][][], tokens: number[][], lengths: number[]): number {
  let total = 0;
  let count = 0;
  tokens.forEach((row, b) => {
    for (let i = 0; i + 1 < lengths[b]; i++) {
      const l = logits[b][i];
      const mx = Math.max(...l);
      const lse = mx + Math.log(l.reduce((a, x) => a + Math.exp(x - mx), 0));
      total += lse - l[row[i + 1]];
      count++;
    }
  });
  return total / count;
}

describe('nextTokenLoss', () => {
  it('equals a naive masked cross-entropy and ignores padding', () => {
    const rand = mulberry32(5);
    const [B, P, V] = [3, 6, 7];
    const logits = Array.from({ length: B }, () => Array.from({ length: P }, () => Array.from({ length: V }, () => 4 * rand() - 2)));
    const tokens = Array.from({ length: B }, () => Array.from({ length: P }, () => Math.floor(rand() * V)));
    const lengths = [6, 2, 4];
    const before = tf.memory().numTensors;
    const lt = tf.tensor3d(logits);
    const tt = tf.tensor2d(tokens, [B, P], 'int32');
    const got = nextTokenLoss(lt, tt, lengths);
    const value = got.dataSync()[0];
    // Padding (positions >= length) must not matter: change it and recompute.
    const tokens2 = tokens.map((r, b) => r.map((t, i) => (i >= lengths[b] ? (t + 1) % V : t)));
    const logits2 = logits.map((r, b) => r.map((l, i) => (i >= lengths[b] - 1 ? l.map((x) => x + 3 * rand()) : l)));
    const lt2 = tf.tensor3d(logits2);
    const tt2 = tf.tensor2d(tokens2, [B, P], 'int32');
    const got2 = nextTokenLoss(lt2, tt2, lengths);
    expect(value).toBeCloseTo(naiveLoss(logits, tokens, lengths), 5);
    expect(got2.dataSync()[0]).toBeCloseTo(value, 5);
    tf.dispose([lt, tt, got, lt2, tt2, got2]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('has the gradient softmax − one-hot on unmasked positions and zero on padding', () => {
    const logits = [[[0.5, -1, 2], [1, 1, 1], [3, 0, 0]]];
    const tokens = [[0, 2, 1]];
    const lengths = [2]; // only position 0 predicts (token 2)
    const g = tf.tidy(() => tf.grad((l: tf.Tensor) => nextTokenLoss(l as tf.Tensor3D, tf.tensor2d(tokens, [1, 3], 'int32'), lengths))(tf.tensor3d(logits)).arraySync()) as number[][][];
    const z = logits[0][0].map(Math.exp);
    const s = z.reduce((a, b) => a + b, 0);
    const want = z.map((x, i) => x / s - (i === 2 ? 1 : 0));
    want.forEach((w, i) => expect(g[0][0][i]).toBeCloseTo(w, 5));
    for (const row of g[0].slice(1)) for (const x of row) expect(Math.abs(x)).toBe(0);
  });

  it('names a bad length', () => {
    const lt = tf.zeros([1, 3, 4]) as tf.Tensor3D;
    const tt = tf.zeros([1, 3], 'int32') as tf.Tensor2D;
    expect(() => nextTokenLoss(lt, tt, [4])).toThrow(/length 4 of row 0/);
    expect(() => nextTokenLoss(lt, tt, [2, 2])).toThrow(/2 lengths for a batch of 1/);
    tf.dispose([lt, tt]);
  });
});
