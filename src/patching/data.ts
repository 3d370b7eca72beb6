/**
 * Patching data: clean/corrupt prompt pairs of one token length, as the sweeps consume them.
 */
import type { PromptPair } from '../tasks/types.ts';

/** Prompt pairs stacked for a sweep. All prompts share one token length. */
export interface PatchingData {
  pairs: PromptPair[];
  /** Clean token ids [batch][pos]. */
  clean: number[][];
  /** Corrupt token ids [batch][pos]. */
  corrupt: number[][];
  /** Answer token id per prompt [batch]. */
  answerIds: number[];
  /** Wrong (competing) token id per prompt [batch]. */
  wrongIds: number[];
  /** Shared token length. */
  pos: number;
  /**
   * When set, model calls unembed only these vocabulary ids, and `answerIds` / `wrongIds` are
   * positions in this list, not vocabulary ids (sweeps set it when the metric reads only the
   * answer and wrong logits).
   */
  logitIds?: number[];
}

/**
 * The data a sweep runs on when its metric reads only the answer and wrong tokens: the distinct
 * answer and wrong ids become `logitIds` (the only logits computed), and the per-prompt ids their
 * positions in that list. For metrics over the whole vocabulary (KL, probabilities), `data` as is.
 */
export function restrictVocabulary(data: PatchingData, metric: { vocabulary?: 'answers' | 'all' }): PatchingData {
  if (metric.vocabulary !== 'answers' || data.logitIds) return data;
  const logitIds = [...new Set([...data.answerIds, ...data.wrongIds])].sort((a, b) => a - b);
  const at = new Map(logitIds.map((id, i) => [id, i]));
  return { ...data, logitIds, answerIds: data.answerIds.map((id) => at.get(id)!), wrongIds: data.wrongIds.map((id) => at.get(id)!) };
}

/**
 * Stack pairs for a sweep. Throws a clear error when the prompts do not all tokenize to one
 * length: every prompt of a batch is patched at the same (layer, position).
 */
export function toPatchingData(pairs: readonly PromptPair[]): PatchingData {
  if (pairs.length === 0) throw new Error('patching needs at least one prompt pair');
  const pos = pairs[0].cleanIds.length;
  pairs.forEach((p, i) => {
    if (p.cleanIds.length !== p.corruptIds.length) {
      throw new Error(`pair ${i}: clean has ${p.cleanIds.length} tokens but corrupt has ${p.corruptIds.length}; they must be equal`);
    }
    if (p.cleanIds.length !== pos) {
      throw new Error(
        `pair ${i} has ${p.cleanIds.length} tokens but pair 0 has ${pos}: all prompts of a sweep are patched at the same ` +
          `(layer, position), so they must tokenize to the same length (group them by length first)`,
      );
    }
  });
  return {
    pairs: [...pairs],
    clean: pairs.map((p) => p.cleanIds),
    corrupt: pairs.map((p) => p.corruptIds),
    answerIds: pairs.map((p) => p.answerId),
    wrongIds: pairs.map((p) => p.wrongId),
    pos,
  };
}
