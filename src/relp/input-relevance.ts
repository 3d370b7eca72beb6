/**
 * Per-token input relevance (an LRP explanation): relevance at the residual stream entering
 * block 0 (token + position embeddings), R = a ⊙ ∂̃f/∂a summed over d_model, where f is the
 * next-token logit (or a logit difference) at the last position and ∂̃ the LRP-modified gradient.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import { disposeCache } from '../hooks/activation-cache.ts';
import { resolveRules, type RuleSet, type Rules } from '../rules/rules.ts';

/** Options of {@link inputRelevance}. */
export interface InputRelevanceOptions {
  /** Target token id; default: the model's top next token. */
  target?: number;
  /** Explain logit[target] − logit[contrast] instead of logit[target]. */
  contrast?: number;
  /** Rule preset or rule set (default `relp`). */
  rules?: Rules;
}

/** Result of {@link inputRelevance}. */
export interface InputRelevance {
  /** Relevance per input token [pos]. */
  relevance: number[];
  /** The explained output value f. */
  output: number;
  /** Σ relevance, close to `output` when the rules conserve relevance (no biases). */
  total: number;
  target: number;
  contrast?: number;
}

/** LRP relevance of each input token of one prompt (token ids [pos]). */
export function inputRelevance(model: HookedTransformer, ids: number[], opts: InputRelevanceOptions = {}): InputRelevance {
  const rules = resolveRules(opts.rules);
  const target =
    opts.target ??
    tf.tidy(() => {
      const lg = model.forward([ids], { lastPositionOnly: true });
      return tf.argMax(tf.reshape(lg, [-1])).dataSync()[0];
    });
  const hook = 'blocks.0.hook_resid_pre';
  const metric = (logits: tf.Tensor3D): tf.Scalar =>
    tf.tidy(() => {
      const last = tf.reshape(tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]), [-1]);
      const pick = (i: number) => tf.sum(tf.mul(last, tf.oneHot(tf.tensor1d([i], 'int32'), model.cfg.dVocab)));
      return (opts.contrast === undefined ? pick(target) : tf.sub(pick(target), pick(opts.contrast))) as tf.Scalar;
    });
  const r = model.runWithCacheAndGrads([ids], metric, { names: [hook], rules });
  try {
    const rel = tf.tidy(() => tf.reshape(tf.sum(tf.mul(r.cache[hook], r.grads[hook]), -1), [-1]));
    const relevance = Array.from(rel.dataSync());
    rel.dispose();
    const output = r.value.dataSync()[0];
    return { relevance, output, total: relevance.reduce((a, b) => a + b, 0), target, contrast: opts.contrast };
  } finally {
    r.logits.dispose();
    r.value.dispose();
    disposeCache(r.cache, r.grads);
  }
}

/** A terminal heat line: tokens on a red (positive) / blue (negative) background, scaled by |R|. */
export function heatLine(tokens: string[], relevance: number[]): string {
  const max = Math.max(1e-12, ...relevance.map(Math.abs));
  return tokens
    .map((t, i) => {
      const a = Math.min(1, Math.abs(relevance[i]) / max);
      const c = Math.round(255 * (1 - a));
      const bg = relevance[i] >= 0 ? `48;2;255;${c};${c}` : `48;2;${c};${c};255`;
      return `\x1b[${bg};38;2;0;0;0m${t}\x1b[0m`;
    })
    .join('');
}
