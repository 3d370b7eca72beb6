/**
 * Clean and corrupt baseline runs, and the metric context shared by every method.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { Hook } from '../hooks/hook-point.ts';
import type { PatchingData } from './data.ts';
import { checkNormaliser, type Metric, type MetricBaselines, type MetricContext } from './metrics.ts';

/** Last-position logits [batch, vocab] of a forward. */
export function lastLogits(logits: tf.Tensor3D): tf.Tensor2D {
  const [b, p, v] = logits.shape;
  return tf.reshape(tf.slice(logits, [0, p - 1, 0], [b, 1, v]), [b, v]) as tf.Tensor2D;
}

/** Metric context tensors for one batch, tiled `repeats` times (group-major). Caller disposes. */
export function metricContext(data: PatchingData, cleanLogProbs: tf.Tensor2D, repeats = 1): MetricContext {
  return tf.tidy(() => {
    const ids = (a: number[]) => tf.tile(tf.tensor1d(a, 'int32'), [repeats]) as tf.Tensor1D;
    return { answerIds: ids(data.answerIds), wrongIds: ids(data.wrongIds), cleanLogProbs: tf.tile(cleanLogProbs, [repeats, 1]) as tf.Tensor2D };
  });
}

/** Dispose a metric context. */
export function disposeContext(c: MetricContext): void {
  c.answerIds.dispose();
  c.wrongIds.dispose();
  c.cleanLogProbs.dispose();
}

/** Baselines and the clean log-probs [batch, vocab] (caller disposes `cleanLogProbs`). */
export interface Baselines extends MetricBaselines {
  cleanLogProbs: tf.Tensor2D;
  /** Per-prompt metric on the clean and corrupt runs. */
  perPromptClean: number[];
  perPromptCorrupt: number[];
}

/** The clean half of the baselines (caller disposes `cleanLogProbs`). */
export interface CleanBaseline {
  clean: number;
  perPromptClean: number[];
  /** Clean log-probabilities at the last position [batch, vocab]. */
  cleanLogProbs: tf.Tensor2D;
}

function values(t: tf.Tensor): number[] {
  const v = t.arraySync() as number[];
  t.dispose();
  return v;
}

function mean(a: number[]): number {
  return a.reduce((s, x) => s + x, 0) / a.length;
}

/**
 * The clean run's metric and log-probs. `cleanLogits` ([batch, pos or 1, vocab]) is a run the
 * caller already made with the same hooks; without it the clean prompts are run here.
 */
export function cleanBaseline(model: HookedTransformer, data: PatchingData, metric: Metric, hooks?: Hook[], cleanLogits?: tf.Tensor3D): CleanBaseline {
  const cleanLast = tf.tidy(() => lastLogits(cleanLogits ?? model.forward(data.clean, { lastPositionOnly: true, hooks, logitIds: data.logitIds }))); // [batch, vocab]
  const cleanLogProbs = tf.tidy(() => tf.logSoftmax(cleanLast) as tf.Tensor2D);
  const ctx = metricContext(data, cleanLogProbs);
  try {
    const perPromptClean = values(tf.tidy(() => metric.perPrompt(cleanLast, ctx)));
    return { clean: mean(perPromptClean), perPromptClean, cleanLogProbs };
  } catch (err) {
    cleanLogProbs.dispose();
    throw err;
  } finally {
    cleanLast.dispose();
    disposeContext(ctx);
  }
}

/** Run clean and corrupt once and measure the metric; throws if normalisation is impossible. */
export function measureBaselines(
  model: HookedTransformer,
  data: PatchingData,
  metric: Metric,
  hooks?: Hook[],
  /** Logits of runs the caller already made with the same hooks ([batch, pos or 1, vocab]); they are not run again. */
  known: { clean?: tf.Tensor3D; corrupt?: tf.Tensor3D } = {},
): Baselines {
  const c = cleanBaseline(model, data, metric, hooks, known.clean);
  const ctx = metricContext(data, c.cleanLogProbs);
  try {
    const corruptLogits = known.corrupt;
    const perPromptCorrupt = values(
      tf.tidy(() => metric.perPrompt(lastLogits(corruptLogits ?? model.forward(data.corrupt, { lastPositionOnly: true, hooks, logitIds: data.logitIds })), ctx)),
    );
    const b = { clean: c.clean, corrupt: mean(perPromptCorrupt) };
    checkNormaliser(metric, b);
    return { ...b, cleanLogProbs: c.cleanLogProbs, perPromptClean: c.perPromptClean, perPromptCorrupt };
  } catch (err) {
    c.cleanLogProbs.dispose();
    throw err;
  } finally {
    disposeContext(ctx);
  }
}
