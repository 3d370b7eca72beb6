/**
 * Metrics on last-position logits. A metric gives one value per prompt; sweeps average over
 * the batch and (by default) normalise so the corrupt run scores 0 and the clean run 1.
 */
import * as tf from '@tensorflow/tfjs';
import { KL_METRIC_NAME, NORMALISED_METRIC_NAME } from './names.ts';

/** Per-prompt inputs a metric may need; tensors are [batch] (or [batch, vocab]). */
export interface MetricContext {
  /** Answer token ids [batch] int32. */
  answerIds: tf.Tensor1D;
  /** Wrong token ids [batch] int32. */
  wrongIds: tf.Tensor1D;
  /** Clean-run log-probabilities at the last position [batch, vocab] (for KL). */
  cleanLogProbs: tf.Tensor2D;
}

/** A metric: last-position logits [batch, vocab] → one value per prompt [batch]. */
export interface Metric {
  name: string;
  /** Larger means "more clean-like" (KL is negated so this holds). */
  perPrompt: (lastLogits: tf.Tensor2D, ctx: MetricContext) => tf.Tensor1D;
  /** Normalise as (m − m_corrupt)/(m_clean − m_corrupt). */
  normalise: boolean;
  /**
   * `answers`: the metric reads only the answer and wrong tokens' logits, so a sweep unembeds
   * just those (see `restrictVocabulary` in patching/data.ts); `all` (the default): the whole vocabulary.
   */
  vocabulary?: 'answers' | 'all';
}

function pick(x: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor1D {
  // Row-wise gather via a one-hot mask: gather has no gradient on wasm.
  return tf.sum(tf.mul(x, tf.oneHot(ids, x.shape[1])), -1) as tf.Tensor1D;
}

/** Logit difference logit[answer] − logit[wrong]. */
export const logitDiff: Metric = {
  name: 'logit_diff',
  perPrompt: (x, c) => tf.sub(pick(x, c.answerIds), pick(x, c.wrongIds)) as tf.Tensor1D,
  normalise: false,
  vocabulary: 'answers',
};

/** The default: logit difference normalised so corrupt = 0 and clean = 1. */
export const normalisedLogitDiff: Metric = { ...logitDiff, name: NORMALISED_METRIC_NAME, normalise: true };

/** Probability difference p[answer] − p[wrong]. */
export const probDiff: Metric = {
  name: 'prob_diff',
  perPrompt: (x, c) => {
    const p = tf.softmax(x) as tf.Tensor2D;
    return tf.sub(pick(p, c.answerIds), pick(p, c.wrongIds)) as tf.Tensor1D;
  },
  normalise: false,
};

/** Negative KL(clean ‖ run) of the next-token distributions (0 on the clean run). */
export const negKlToClean: Metric = {
  name: KL_METRIC_NAME,
  perPrompt: (x, c) => {
    const lp = tf.logSoftmax(x);
    return tf.neg(tf.sum(tf.mul(tf.exp(c.cleanLogProbs), tf.sub(c.cleanLogProbs, lp)), -1)) as tf.Tensor1D;
  },
  normalise: false,
};

/** Metrics by CLI name. */
export const METRICS: Record<string, Metric> = {
  'logit-diff': logitDiff,
  'normalised-logit-diff': normalisedLogitDiff,
  'prob-diff': probDiff,
  kl: negKlToClean,
};

/** Look up a metric by CLI name, or pass a {@link Metric} through. */
export function resolveMetric(m: string | Metric | undefined): Metric {
  if (m === undefined) return normalisedLogitDiff;
  if (typeof m !== 'string') return m;
  const got = METRICS[m];
  if (!got) throw new Error(`unknown metric "${m}" (use one of: ${Object.keys(METRICS).join(', ')})`);
  return got;
}

/** Baselines of a metric: batch means on the clean and corrupt runs. */
export interface MetricBaselines {
  clean: number;
  corrupt: number;
}

/** Relative gap under which clean and corrupt count as equal (normalising would divide by ~0). */
export const MIN_NORMALISER = 1e-6;

/** Check that normalisation is possible; throws a clear error when clean ≈ corrupt. */
export function checkNormaliser(metric: Metric, b: MetricBaselines): void {
  if (!metric.normalise) return;
  const gap = b.clean - b.corrupt;
  if (!(Math.abs(gap) > MIN_NORMALISER * Math.max(1, Math.abs(b.clean), Math.abs(b.corrupt)))) {
    throw new Error(
      `cannot normalise ${metric.name}: the clean (${b.clean.toPrecision(6)}) and corrupt (${b.corrupt.toPrecision(6)}) values are ` +
        `(nearly) equal, so the corruption does not change the behaviour; use --metric logit-diff or another corruption`,
    );
  }
}

/**
 * Batch-mean metric [groups] from per-prompt values [groups·batch], normalised when the metric asks.
 * Prompts are laid out group-major: index = g·batch + b.
 */
export function aggregate(perPrompt: tf.Tensor1D, batch: number, metric: Metric, b: MetricBaselines): tf.Tensor1D {
  const mean = tf.mean(tf.reshape(perPrompt, [-1, batch]), 1) as tf.Tensor1D;
  if (!metric.normalise) return mean;
  return tf.div(tf.sub(mean, b.corrupt), b.clean - b.corrupt) as tf.Tensor1D;
}
