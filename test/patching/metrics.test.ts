import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { checkNormaliser, logitDiff, negKlToClean, normalisedLogitDiff, probDiff, resolveMetric, aggregate } from '../../src/patching/metrics.ts';

const logits = [
  [1.0, 2.5, -0.3, 0.7],
  [0.2, -1.0, 3.0, 0.1],
];
const clean = [
  [0.5, 0.1, 0.2, 0.0],
  [1.0, 1.0, 1.0, 1.0],
];

function softmax(r: number[]): number[] {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe('metrics', () => {
  const ctx = () => ({
    answerIds: tf.tensor1d([1, 2], 'int32'),
    wrongIds: tf.tensor1d([0, 3], 'int32'),
    cleanLogProbs: tf.logSoftmax(tf.tensor2d(clean)) as tf.Tensor2D,
  });

  it('logit difference, probability difference and KL equal hand computation', () => {
    const c = ctx();
    const x = tf.tensor2d(logits);
    const ld = logitDiff.perPrompt(x, c).arraySync();
    expect(ld[0]).toBeCloseTo(2.5 - 1.0, 6);
    expect(ld[1]).toBeCloseTo(3.0 - 0.1, 6);
    const pd = probDiff.perPrompt(x, c).arraySync();
    const p0 = softmax(logits[0]);
    expect(pd[0]).toBeCloseTo(p0[1] - p0[0], 6);
    const kl = negKlToClean.perPrompt(x, c).arraySync();
    const pc = softmax(clean[1]);
    const pr = softmax(logits[1]);
    const want = -pc.reduce((s, p, i) => s + p * (Math.log(p) - Math.log(pr[i])), 0);
    expect(kl[1]).toBeCloseTo(want, 5);
    tf.dispose([x, c.answerIds, c.wrongIds, c.cleanLogProbs]);
  });

  it('normalises so corrupt = 0 and clean = 1, group-major over stacked batches', () => {
    const per = tf.tensor1d([1, 3, 5, 7]); // two groups of two prompts: means 2 and 6
    const v = aggregate(per, 2, normalisedLogitDiff, { clean: 6, corrupt: 2 }).arraySync();
    expect(v).toEqual([0, 1]);
    per.dispose();
  });

  it('refuses to normalise when clean ≈ corrupt, and names unknown metrics', () => {
    expect(() => checkNormaliser(normalisedLogitDiff, { clean: 1.5, corrupt: 1.5 })).toThrow(/nearly\) equal/);
    expect(() => checkNormaliser(logitDiff, { clean: 1.5, corrupt: 1.5 })).not.toThrow();
    expect(() => resolveMetric('accuracy')).toThrow(/unknown metric "accuracy"/);
    expect(resolveMetric(undefined)).toBe(normalisedLogitDiff);
  });
});
