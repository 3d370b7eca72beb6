/**
 * JSONL prompt-pair datasets: one JSON object per line,
 * `{"clean": "...", "corrupt": "...", "answer": " Mary", "wrong": " John"}`.
 * Blank lines are ignored. An optional `meta` object of string/number values is kept.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SingleTokenError } from '../tokenizer.ts';
import type { PromptPair, TokenEncoder } from './types.ts';

const FIELDS = ['clean', 'corrupt', 'answer', 'wrong'] as const;

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
 * Each error names the source and the 1-based line: malformed JSON, a line that is not an object,
 * a missing or non-string field, an answer/wrong that is not a single token (with the tokens it
 * splits into), clean/corrupt of unequal token length (with both lengths), and an empty dataset.
 */
export function parseJsonlDataset(text: string, tokenizer: TokenEncoder, source = '<inline>'): PromptPair[] {
  const pairs: PromptPair[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${source}:${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: malformed JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new Error(`${where}: expected a JSON object with fields ${FIELDS.join(', ')}`);
    }
    const rec = obj as Record<string, unknown>;
    for (const f of FIELDS) {
      if (!(f in rec)) throw new Error(`${where}: missing field "${f}"`);
      if (typeof rec[f] !== 'string') {
        throw new Error(`${where}: field "${f}" must be a string, got ${JSON.stringify(rec[f])}`);
      }
    }
    const clean = rec.clean as string;
    const corrupt = rec.corrupt as string;
    const answer = rec.answer as string;
    const wrong = rec.wrong as string;
    const answerId = singleToken(tokenizer, answer, 'answer', where);
    const wrongId = singleToken(tokenizer, wrong, 'wrong', where);
    const cleanIds = tokenizer.encodePrompt(clean);
    const corruptIds = tokenizer.encodePrompt(corrupt);
    if (cleanIds.length !== corruptIds.length) {
      throw new Error(
        `${where}: clean and corrupt must have the same token length, but clean is ${cleanIds.length} tokens ` +
          `and corrupt is ${corruptIds.length} tokens`,
      );
    }
    if (cleanIds.length === 0) throw new Error(`${where}: clean prompt is empty`);
    const pair: PromptPair = { clean, corrupt, answer, wrong, cleanIds, corruptIds, answerId, wrongId };
    const meta = readMeta(rec.meta, where);
    if (meta) pair.meta = meta;
    pairs.push(pair);
  });
  if (pairs.length === 0) throw new Error(`${source}: dataset contains no prompt pairs`);
  return pairs;
}

/**
 * Token id of `text`, which must be exactly one known token (`tokenizer.singleToken`; no decode
 * round-trip, so a WordPiece vocabulary accepts `" Paul"`).
 */
function singleToken(tokenizer: TokenEncoder, text: string, field: string, where: string): number {
  try {
    return tokenizer.singleToken(text);
  } catch (e) {
    if (e instanceof SingleTokenError && e.reason === 'several') {
      const parts = e.pieces.map((p) => JSON.stringify(p)).join(', ');
      throw new Error(`${where}: field "${field}" ${JSON.stringify(text)} must be a single token but splits into ${e.ids.length} tokens: [${parts}] (ids ${e.ids.join(', ')})`);
    }
    throw new Error(`${where}: field "${field}" ${JSON.stringify(text)} is not a single known token: ${(e as Error).message.replace(/^toSingleToken: /, '')}`);
  }
}

function readMeta(meta: unknown, where: string): Record<string, string | number> | undefined {
  if (meta === undefined) return undefined;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new Error(`${where}: field "meta" must be an object of strings/numbers`);
  }
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw new Error(`${where}: meta.${k} must be a string or number, got ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  return out;
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
