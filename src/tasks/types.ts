/**
 * Shared types for task datasets (clean/corrupt prompt pairs for patching).
 */

/**
 * Minimal tokenizer interface the task code needs. The project's Tokenizer implements it;
 * tests may use any adapter. `encode` must not add BOS/EOS tokens.
 */
export interface TokenEncoder {
  /** Token ids of `text` (no special tokens added). */
  encode(text: string): number[];
  /**
   * Token ids of a whole prompt: `encode(text)` behind the special tokens the tokenizer puts in
   * front by default (BOS for Llama-style tokenizers, nothing for GPT-2), or as overridden by
   * `--prepend-bos` / `--no-prepend-bos`.
   */
  encodePrompt(text: string): number[];
  /**
   * Id of `text` as exactly one token, e.g. `" Mary"` (a leading space means "after a space",
   * whatever the whitespace scheme). Throws naming the pieces when `text` is several tokens, none,
   * or the unknown token. No decode round-trip is involved.
   */
  singleToken(text: string): number;
  /** Text of `ids`. */
  decode(ids: number[]): string;
  /** Number of token ids: ids lie in [0, vocabSize). Datasets that give ids directly are checked against it. */
  readonly vocabSize: number;
  /** Id that out-of-vocabulary words map to, if the vocabulary has one (an answer must not be it). */
  readonly unkTokenId?: number | undefined;
}

/**
 * One clean/corrupt prompt pair. The metric is usually the logit difference
 * `logit[answerId] - logit[wrongId]` at the last position.
 *
 * Invariants (checked by every producer in src/tasks): `cleanIds.length === corruptIds.length`,
 * `answerId` and `wrongId` are each the one token that `answer` / `wrong` adds after the clean
 * prompt (see `answerInContext`; or the ids a dataset gives directly), and both prompts end
 * right before the answer token.
 */
export interface PromptPair {
  clean: string;
  corrupt: string;
  /** Correct next token for the clean prompt, e.g. " Mary". */
  answer: string;
  /** Competing token, e.g. the subject " John". */
  wrong: string;
  /** Token ids of `clean`, length = seq. */
  cleanIds: number[];
  /** Token ids of `corrupt`, same length as `cleanIds`. */
  corruptIds: number[];
  answerId: number;
  wrongId: number;
  /** Free-form provenance (template index, order "ABBA"/"BABA", names, ...). */
  meta?: Record<string, string | number>;
}

/** Pairs that all share one token length, so they can be stacked into a [batch, length] tensor. */
export interface PairBatch {
  pairs: PromptPair[];
  /** Token length shared by every clean and corrupt prompt in the batch. */
  length: number;
}
