/**
 * Answers in context: the answer (or wrong) token of a prompt is the token that follows the prompt
 * when prompt and answer are tokenized together. Tokenized alone, an answer can come out
 * differently from how the model reads it: a SentencePiece-style tokenizer prepends `▁` to every
 * text, so `"Sue"` alone is `[▁, Sue]` although after "… gave the ball to " it is the one token `Sue`.
 */
import type { TokenEncoder } from './types.ts';

/** Why an answer does not resolve to one token after its prompt. */
export type AnswerProblem = 'not-prefix' | 'several' | 'none' | 'unknown';

/**
 * Thrown by {@link answerInContext}. The message reads after the answer, e.g.
 * `"Sue" ` + `must be a single token but splits into 2 tokens: …`; callers put the field and line in front.
 */
export class AnswerInContextError extends Error {
  constructor(
    message: string,
    /** The answer text. */
    readonly answer: string,
    readonly reason: AnswerProblem,
    /** Ids of prompt + answer from the first one that is not the prompt's. */
    readonly ids: number[],
  ) {
    super(message);
    this.name = 'AnswerInContextError';
  }
}

/**
 * The token id that `answer` adds after `prompt`: `encodePrompt(prompt + answer)` must start with
 * the prompt's own tokens (`promptIds`, by default `encodePrompt(prompt)`) and add exactly one
 * known token. GPT-2's `" Mary"` after "… gave a drink to" is `ĠMary` as before; a tokenizer that
 * prepends `▁` resolves `"Sue"` after "… to " to `Sue` instead of refusing `[▁, Sue]`.
 *
 * @throws AnswerInContextError when the tokenizer merges the prompt's last tokens with the answer
 *   (`not-prefix`), when the answer adds several tokens or none, or when it adds the unknown token.
 */
export function answerInContext(tokenizer: TokenEncoder, prompt: string, answer: string, promptIds: readonly number[] = tokenizer.encodePrompt(prompt)): number {
  const all = tokenizer.encodePrompt(prompt + answer);
  const split = commonPrefix(promptIds, all);
  const fail = (msg: string, reason: AnswerProblem) => new AnswerInContextError(msg, answer, reason, all.slice(split));
  if (split < promptIds.length) {
    const was = shown(piecesInContext(tokenizer, [...promptIds], split));
    const became = shown(piecesInContext(tokenizer, all, split));
    throw fail(`does not follow the prompt as its own token: the prompt's tokens are not a prefix of prompt + answer (the tokenizer merges across the boundary: the prompt's ${was} becomes ${became})`, 'not-prefix');
  }
  const after = all.slice(split);
  if (after.length === 0) throw fail('adds no token after the prompt', 'none');
  if (after.length > 1) {
    const pieces = shown(piecesInContext(tokenizer, all, split));
    throw fail(`must be a single token but splits into ${after.length} tokens: ${pieces} (ids ${after.join(', ')}) after the prompt`, 'several');
  }
  const unk = tokenizer.unkTokenId;
  // A word-level vocabulary maps unknown words to UNK silently; never what an answer means.
  if (unk !== undefined && after[0] === unk && answer.trim() !== tokenizer.decode([unk]).trim()) {
    const unkText = JSON.stringify(tokenizer.decode([unk]));
    throw fail(`is not a single known token: ${JSON.stringify(answer)} is not in the vocabulary (it maps to the unknown token ${unkText})`, 'unknown');
  }
  return after[0];
}

/** Length of the longest common prefix of `a` and `b`. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * The text of `ids[from]`, `ids[from + 1]`, … as each reads inside the sequence (with its leading
 * space, which SentencePiece decoders strip from a text's first token): the growth of the decoded
 * prefix, or the token decoded alone where a decoder rewrites earlier text.
 */
function piecesInContext(tokenizer: TokenEncoder, ids: number[], from: number): string[] {
  const pieces: string[] = [];
  let before = tokenizer.decode(ids.slice(0, from));
  for (let j = from; j < ids.length; j++) {
    const text = tokenizer.decode(ids.slice(0, j + 1));
    pieces.push(text.startsWith(before) ? text.slice(before.length) : tokenizer.decode([ids[j]]));
    before = text;
  }
  return pieces;
}

/** `["a", "b"]` for messages. */
function shown(pieces: readonly string[]): string {
  return `[${pieces.map((p) => JSON.stringify(p)).join(', ')}]`;
}
