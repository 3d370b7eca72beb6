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
