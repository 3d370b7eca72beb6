/**
 * IOI evaluation of a (toy) model on held-out Wang-style prompts: accuracy, clean logit
 * difference and ABC-corrupted logit difference, per name split.
 */
import * as tf from '@tensorflow/tfjs';
import { mean } from 'simple-statistics';
import { generateIoi, groupByLength, splitBatches } from '../tasks/ioi.ts';
import type { PromptPair, TokenEncoder } from '../tasks/types.ts';
import { HELD_OUT_NAMES, TRAIN_NAMES } from './corpus.ts';

/** Logits [batch, pos, vocab] of a batch of equal-length token rows (caller disposes). */
export type ForwardFn = (tokens: number[][]) => tf.Tensor3D;

/** Metrics of one evaluation split. */
export interface IoiSplitMetrics {
  n: number;
  /** Share of clean prompts with logit(IO) − logit(S) > 0. */
  accuracy: number;
  /** Mean clean logit difference logit(IO) − logit(S) at the last position. */
  meanLd: number;
  /** Smallest clean logit difference. */
  minLd: number;
  /** Mean logit(IO) − logit(S) on the ABC-corrupted prompts (S2 replaced by a third name). */
  meanAbcLd: number;
  /** Mean |ABC logit difference|. */
  meanAbsAbcLd: number;
}

/** Per-prompt logit differences. */
export interface IoiLds {
  clean: number[];
  abc: number[];
}

/**
 * Clean and ABC-corrupted logit differences `logit[answerId] − logit[wrongId]` at the last
 * position of each pair, in input order. With `bosId`, BOS is put in front of every prompt.
 */
export function ioiLogitDiffs(forward: ForwardFn, pairs: readonly PromptPair[], opts: { bosId?: number; batchSize?: number } = {}): IoiLds {
  const index = new Map(pairs.map((p, i) => [p, i] as [PromptPair, number]));
  const clean = new Array<number>(pairs.length);
  const abc = new Array<number>(pairs.length);
  const pre = opts.bosId === undefined ? [] : [opts.bosId];
  for (const group of groupByLength(pairs)) {
    for (const b of splitBatches(group, opts.batchSize ?? 128)) {
      const rows = [...b.pairs.map((p) => [...pre, ...p.cleanIds]), ...b.pairs.map((p) => [...pre, ...p.corruptIds])];
      const logits = forward(rows); // [2·n, pos, vocab]
      const [, pos, vocab] = logits.shape;
      const last = tf.tidy(() => tf.reshape(tf.slice(logits, [0, pos - 1, 0], [rows.length, 1, vocab]), [rows.length, vocab]));
      const data = last.dataSync();
      last.dispose();
      logits.dispose();
      b.pairs.forEach((p, j) => {
        const i = index.get(p)!;
        const k = b.pairs.length + j;
        clean[i] = data[j * vocab + p.answerId] - data[j * vocab + p.wrongId];
        abc[i] = data[k * vocab + p.answerId] - data[k * vocab + p.wrongId];
      });
    }
  }
  return { clean, abc };
}

/** Summary metrics of per-prompt logit differences. */
export function summarize(lds: IoiLds): IoiSplitMetrics {
  if (lds.clean.length === 0) throw new Error('summarize: no prompts');
  return {
    n: lds.clean.length,
    accuracy: lds.clean.filter((x) => x > 0).length / lds.clean.length,
    meanLd: mean(lds.clean),
    minLd: Math.min(...lds.clean),
    meanAbcLd: mean(lds.abc),
    meanAbsAbcLd: mean(lds.abc.map(Math.abs)),
  };
}

/** Names of the evaluation splits. */
export type IoiSplit = 'heldOutNames' | 'trainNames' | 'allNames';

/**
 * Held-out IOI prompt pairs (ABC corruption) from the Wang-style templates, which training never
 * sees: `heldOutNames` uses only names kept out of every multi-name training sentence,
 * `trainNames` only names the model saw in such sentences, `allNames` the default name list of
 * src/tasks/ioi.ts (both kinds mixed, as other relp code draws them).
 */
export function ioiEvalSets(tokenizer: TokenEncoder, n: number, seed: number): Record<IoiSplit, PromptPair[]> {
  return {
    heldOutNames: generateIoi(tokenizer, { n, seed, corruption: 'abc', names: HELD_OUT_NAMES }),
    trainNames: generateIoi(tokenizer, { n, seed: seed + 1, corruption: 'abc', names: TRAIN_NAMES }),
    allNames: generateIoi(tokenizer, { n, seed: seed + 2, corruption: 'abc' }),
  };
}

/** Evaluates every split; see {@link ioiLogitDiffs}. */
export function evaluateIoi(
  forward: ForwardFn,
  sets: Record<IoiSplit, PromptPair[]>,
  opts: { bosId?: number; batchSize?: number } = {},
): Record<IoiSplit, IoiSplitMetrics> {
  const out = {} as Record<IoiSplit, IoiSplitMetrics>;
  for (const k of Object.keys(sets) as IoiSplit[]) out[k] = summarize(ioiLogitDiffs(forward, sets[k], opts));
  return out;
}

/** Metrics of `pairs` split by name order (`meta.order`: "BABA" / "ABBA"). */
export function evaluateByOrder(forward: ForwardFn, pairs: readonly PromptPair[], opts: { bosId?: number; batchSize?: number } = {}): Record<string, IoiSplitMetrics> {
  const lds = ioiLogitDiffs(forward, pairs, opts);
  const groups: Record<string, IoiLds> = {};
  pairs.forEach((p, i) => {
    const k = String(p.meta?.order ?? 'unknown');
    const g = (groups[k] ??= { clean: [], abc: [] });
    g.clean.push(lds.clean[i]);
    g.abc.push(lds.abc[i]);
  });
  return Object.fromEntries(Object.entries(groups).map(([k, g]) => [k, summarize(g)]));
}
