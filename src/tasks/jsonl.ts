/**
 * JSONL prompt-pair datasets: one JSON object per line,
 * `{"clean": "...", "corrupt": "...", "answer": " Mary", "wrong": " John"}`.
 * Each of the four may instead (or as well) be given as token ids, used exactly as given:
 * `clean_ids` / `corrupt_ids` (integer arrays) and `answer_id` / `wrong_id` (integers).
 * Blank lines are ignored. An optional `meta` object of string/number values is kept.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { jsonPath, valueAt } from '../contracts/zod-issues.ts';
import { AnswerInContextError, answerInContext } from './answer.ts';
import type { PromptPair, TokenEncoder } from './types.ts';

/** Each text field and the id field that may stand in for it. */
const FIELDS = [
  ['clean', 'clean_ids'],
  ['corrupt', 'corrupt_ids'],
  ['answer', 'answer_id'],
  ['wrong', 'wrong_id'],
] as const;

/** One line of a JSONL dataset (the one definition of its fields). Which are required is checked in {@link lineOf}. */
const JsonlLineSchema = z.object({
  clean: z.string().optional(),
  corrupt: z.string().optional(),
  answer: z.string().optional(),
  wrong: z.string().optional(),
  clean_ids: z.array(z.number().int()).optional(),
  corrupt_ids: z.array(z.number().int()).optional(),
  answer_id: z.number().int().optional(),
  wrong_id: z.number().int().optional(),
  meta: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
});
type JsonlLine = z.infer<typeof JsonlLineSchema>;

/** What each top-level field must be, for messages. */
const EXPECTED: Record<keyof JsonlLine, string> = {
  clean: 'a string',
  corrupt: 'a string',
  answer: 'a string',
  wrong: 'a string',
  clean_ids: 'an array of integers',
  corrupt_ids: 'an array of integers',
  answer_id: 'an integer',
  wrong_id: 'an integer',
  meta: 'an object of strings/numbers',
};

/** Reads and validates a JSONL dataset file. See {@link parseJsonlDataset}. */
export function loadJsonlDataset(path: string, tokenizer: TokenEncoder): PromptPair[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read dataset ${path}: ${(e as Error).message}`);
  }
  return parseJsonlDataset(text, tokenizer, path);
}

/**
 * Parses and validates JSONL dataset text. `source` names the file in error messages.
 *
 * A text answer/wrong is the one token it adds after the clean prompt (see `answerInContext`);
 * ids given directly are used as they are. Each error names the source and the 1-based line:
 * malformed JSON, a line that is not an object, a missing field (neither text nor ids) or one of
 * the wrong type, an answer/wrong that does not add exactly one known token after the prompt
 * (with the tokens it gives), an id outside the vocabulary, clean/corrupt of unequal token length
 * (with both lengths), and an empty dataset.
 */
export function parseJsonlDataset(text: string, tokenizer: TokenEncoder, source = '<inline>'): PromptPair[] {
  const pairs: PromptPair[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${source}:${i + 1}`;
    pairs.push(pairOf(lineOf(line, where), tokenizer, where));
  });
  if (pairs.length === 0) throw new Error(`${source}: dataset contains no prompt pairs`);
  return pairs;
}

/** One line parsed against {@link JsonlLineSchema}, with each of the four fields present as text or ids. */
function lineOf(line: string, where: string): JsonlLine {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    throw new Error(`${where}: malformed JSON (${(e as Error).message})`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new Error(`${where}: expected a JSON object with fields ${FIELDS.map(([t]) => t).join(', ')} (or ${FIELDS.map(([, ids]) => ids).join(', ')})`);
  }
  const r = JsonlLineSchema.safeParse(obj);
  if (!r.success) {
    const path = r.error.issues[0]!.path;
    const top = String(path[0]) as keyof JsonlLine;
    const expected = path.length === 1 ? EXPECTED[top] : top === 'meta' ? 'a string or number' : 'an integer';
    throw new Error(`${where}: field "${jsonPath(path)}" must be ${expected}, got ${short(valueAt(obj, path))}`);
  }
  for (const [textField, idField] of FIELDS) {
    if (r.data[textField] === undefined && r.data[idField] === undefined) throw new Error(`${where}: missing field "${textField}" (or "${idField}")`);
  }
  return r.data;
}

/** A JSON value for a message, cut short. */
function short(v: unknown): string {
  const json = JSON.stringify(v) ?? 'undefined';
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** The prompt pair of a validated line: ids as given, text prompts tokenized, text answers resolved after the clean prompt. */
function pairOf(rec: JsonlLine, tokenizer: TokenEncoder, where: string): PromptPair {
  const cleanIds = rec.clean_ids ? inVocab(rec.clean_ids, 'clean_ids', tokenizer, where) : tokenizer.encodePrompt(rec.clean!);
  const corruptIds = rec.corrupt_ids ? inVocab(rec.corrupt_ids, 'corrupt_ids', tokenizer, where) : tokenizer.encodePrompt(rec.corrupt!);
  if (cleanIds.length !== corruptIds.length) {
    throw new Error(
      `${where}: clean and corrupt must have the same token length, but clean is ${cleanIds.length} tokens ` +
        `and corrupt is ${corruptIds.length} tokens`,
    );
  }
  if (cleanIds.length === 0) throw new Error(`${where}: clean prompt is empty`);
  const id = (field: 'answer' | 'wrong'): number => {
    const given = rec[`${field}_id`];
    if (given !== undefined) return inVocab([given], `${field}_id`, tokenizer, where)[0];
    // Text prompts were tokenized above; reuse those ids as the prefix to check.
    return tokenInContext(tokenizer, rec.clean, rec[field]!, field, where, rec.clean_ids ? undefined : cleanIds);
  };
  const answerId = id('answer');
  const wrongId = id('wrong');
  const pair: PromptPair = {
    clean: rec.clean ?? tokenizer.decode(cleanIds),
    corrupt: rec.corrupt ?? tokenizer.decode(corruptIds),
    answer: rec.answer ?? tokenizer.decode([answerId]),
    wrong: rec.wrong ?? tokenizer.decode([wrongId]),
    cleanIds,
    corruptIds,
    answerId,
    wrongId,
  };
  if (rec.meta) pair.meta = rec.meta;
  return pair;
}

/** `ids` (a copy), each checked to lie in [0, vocabSize); the error names the field and index. */
function inVocab(ids: readonly number[], field: string, tokenizer: TokenEncoder, where: string): number[] {
  const n = tokenizer.vocabSize;
  ids.forEach((id, i) => {
    if (id < 0 || id >= n) {
      const name = field.endsWith('_ids') ? `${field}[${i}]` : field;
      throw new Error(`${where}: field "${name}" ${id} is outside the vocabulary [0, ${n})`);
    }
  });
  return [...ids];
}

/** Token id that the text `field` adds after the clean prompt, or a one-line error naming field and line. */
function tokenInContext(tokenizer: TokenEncoder, clean: string | undefined, text: string, field: string, where: string, cleanIds?: number[]): number {
  if (clean === undefined) {
    throw new Error(`${where}: field "${field}" is text, which resolves after the text prompt "clean"; with "clean_ids" alone give "${field}_id"`);
  }
  try {
    return answerInContext(tokenizer, clean, text, cleanIds);
  } catch (e) {
    if (!(e instanceof AnswerInContextError)) throw e;
    throw new Error(`${where}: field "${field}" ${JSON.stringify(text)} ${e.message}`);
  }
}

/** Serialises pairs as JSONL text (fields clean, corrupt, answer, wrong, and meta when present). */
export function formatJsonlDataset(pairs: readonly PromptPair[]): string {
  return pairs
    .map((p) => {
      const rec: Record<string, unknown> = { clean: p.clean, corrupt: p.corrupt, answer: p.answer, wrong: p.wrong };
      if (p.meta) rec.meta = p.meta;
      return JSON.stringify(rec);
    })
    .map((l) => l + '\n')
    .join('');
}

/** Writes pairs to `path` as JSONL (creating parent directories). Token ids are not stored. */
export function writeJsonlDataset(path: string, pairs: readonly PromptPair[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, formatJsonlDataset(pairs), 'utf8');
}
