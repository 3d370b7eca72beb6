import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { heldOutBatches, heldOutLoss, plateaued } from '../../src/training/held-out.ts';
import { buildVocab, collectVocabulary } from '../../src/training/word-tokenizer.ts';
import { CorpusGenerator } from '../../src/training/corpus.ts';
import type { TokenBatch } from '../../src/training/batches.ts';

describe('plateaued', () => {
  const o = { patience: 2, minRelImprovement: 0.01 };
  it('is false while the loss keeps falling by more than the threshold', () => {
    expect(plateaued([3, 2.5, 2.0, 1.9], o)).toBe(false); // best recent 1.9 < 2.5·0.99
    expect(plateaued([3, 2.5], o)).toBe(false); // not enough history
  });
  it('is true when the last `patience` evaluations improve the best by less than the threshold', () => {
    expect(plateaued([3, 2.0, 1.995, 1.99], o)).toBe(true); // 1.99 > 2.0·0.99 = 1.98
    expect(plateaued([3, 2.0, 2.1, 2.05], o)).toBe(true); // got worse
  });
  it('rejects a bad patience', () => {
    expect(() => plateaued([1, 2], { patience: 0, minRelImprovement: 0 })).toThrow(/patience must be a positive integer/);
  });
});

describe('heldOutBatches / heldOutLoss', () => {
  const vocab = buildVocab(collectVocabulary());
  it('is deterministic, uses another stream than training but the same facts', () => {
    const a = heldOutBatches(vocab, { trainSeed: 0, batches: 2, batchSize: 4, maxTokens: 32 });
    const b = heldOutBatches(vocab, { trainSeed: 0, batches: 2, batchSize: 4, maxTokens: 32 });
    expect(a.map((x) => [...x.tokens])).toEqual(b.map((x) => [...x.tokens]));
    const train = new CorpusGenerator({ seed: 0, maxTokens: 32 });
    const held = new CorpusGenerator({ seed: 7919, factSeed: 0, maxTokens: 32 });
    expect(held.facts).toEqual(train.facts);
    expect(new CorpusGenerator({ seed: 7919, maxTokens: 32 }).facts).not.toEqual(train.facts);
  });

  it('is the token-weighted mean cross-entropy over batches, computed by hand for uniform logits', () => {
    // Uniform logits over V tokens: every predicted token costs ln V, whatever the batch sizes.
    const V = 5;
    const batches: TokenBatch[] = [
      { tokens: Int32Array.from([1, 2, 3, 0, 4, 1, 0, 0]), batch: 2, pos: 4, lengths: [4, 2] },
      { tokens: Int32Array.from([2, 2, 2]), batch: 1, pos: 3, lengths: [3] },
    ];
    const before = tf.memory().numTensors;
    const uniform = (t: tf.Tensor2D) => tf.zeros([t.shape[0], t.shape[1], V]) as tf.Tensor3D;
    expect(heldOutLoss(uniform, batches)).toBeCloseTo(Math.log(V), 6);
    // Logits that put all mass on the next token of row 0 of batch 0 only: weights by tokens.
    // Batch 0 has 3 + 1 predicted tokens, batch 1 has 2; a forward scoring batch 1 perfectly
    // (loss ≈ 0) and batch 0 uniformly gives (4·ln V + 2·0) / 6.
    const mixed = (t: tf.Tensor2D) =>
      tf.tidy(() => {
        if (t.shape[1] === 3) return tf.mul(tf.oneHot(tf.fill([1, 3], 2, 'int32') as tf.Tensor2D, V), 1e4) as tf.Tensor3D;
        return tf.zeros([t.shape[0], t.shape[1], V]) as tf.Tensor3D;
      });
    expect(heldOutLoss(mixed, batches)).toBeCloseTo((4 * Math.log(V)) / 6, 5);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => heldOutLoss(uniform, [])).toThrow(/no batches/);
  });
});
