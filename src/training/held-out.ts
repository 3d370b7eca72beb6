/**
 * Held-out language-model loss and the plateau rule that ends training ("train to convergence").
 */
import * as tf from '@tensorflow/tfjs';
import { CorpusGenerator } from './corpus.ts';
import { bucketedBatches, type TokenBatch } from './batches.ts';
import { nextTokenLoss } from './loss.ts';
import type { WordVocab } from './word-tokenizer.ts';
import { mulberry32 } from '../models/state-dict.ts';

/** Options of {@link heldOutBatches}. */
export interface HeldOutOptions {
  /** The training run's corpus seed (its facts are kept). */
  trainSeed: number;
  /** Number of batches. */
  batches: number;
  /** Sequences per batch. */
  batchSize: number;
  /** The model's context (corpus `maxTokens`). */
  maxTokens: number;
}

/**
 * A fixed held-out set: sequences from a stream seeded apart from training (seed + 7919) but with
 * the training run's facts, bucketed by length like training batches.
 */
export function heldOutBatches(vocab: WordVocab, o: HeldOutOptions): TokenBatch[] {
  const gen = new CorpusGenerator({ seed: o.trainSeed + 7919, factSeed: o.trainSeed, maxTokens: o.maxTokens });
  return bucketedBatches(gen, vocab, o.batchSize, o.batches, mulberry32(o.trainSeed + 7920));
}

/**
 * Token-weighted mean next-token loss (nats) of a forward over batches; no tensors are left behind.
 * @param forward token ids [batch, pos] int32 → logits [batch, pos, vocab]
 */
export function heldOutLoss(forward: (tokens: tf.Tensor2D) => tf.Tensor3D, batches: readonly TokenBatch[]): number {
  if (batches.length === 0) throw new Error('heldOutLoss: no batches');
  let sum = 0;
  let count = 0;
  for (const b of batches) {
    const n = b.lengths.reduce((a, len) => a + len - 1, 0);
    const loss = tf.tidy(() => {
      const tokens = tf.tensor2d(b.tokens, [b.batch, b.pos], 'int32');
      return nextTokenLoss(forward(tokens), tokens, b.lengths);
    });
    sum += loss.dataSync()[0] * n;
    loss.dispose();
    count += n;
  }
  return sum / count;
}

/** Options of {@link plateaued}. */
export interface PlateauOptions {
  /** Evaluations without enough improvement before stopping. */
  patience: number;
  /** Relative improvement of the best loss that counts as progress (e.g. 0.005 = 0.5%). */
  minRelImprovement: number;
}

/**
 * True when the best loss of the last `patience` evaluations is not at least `minRelImprovement`
 * (relative) below the best loss before them: the held-out loss has plateaued.
 */
export function plateaued(losses: readonly number[], o: PlateauOptions): boolean {
  if (!Number.isInteger(o.patience) || o.patience < 1) throw new Error(`plateaued: patience must be a positive integer, got ${o.patience}`);
  if (losses.length <= o.patience) return false;
  const before = Math.min(...losses.slice(0, losses.length - o.patience));
  const recent = Math.min(...losses.slice(losses.length - o.patience));
  return recent > before * (1 - o.minRelImprovement);
}
