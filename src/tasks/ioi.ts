/**
 * IOI (indirect object identification) dataset generator, Wang et al. 2022 style.
 *
 * Clean prompt: "Then, John and Mary went to the store. John gave a drink to" -> " Mary" (IO),
 * competing token " John" (S). Two corruptions:
 * - `abc`: S2 becomes a third name C ("... Mike gave a drink to"); answer/wrong stay IO/S.
 * - `swap`: IO and S are exchanged everywhere, so the corrupt prompt's correct answer is the
 *   clean prompt's wrong token (logit difference flips sign on a model that does IOI).
 */
import { mulberry32 } from '../models/state-dict.ts';
import { AnswerInContextError, answerInContext } from './answer.ts';
import { fillTemplate, ioiTemplates, type IoiOrder, type IoiTemplate } from './ioi-templates.ts';
import type { PairBatch, PromptPair, TokenEncoder } from './types.ts';
import { NAMES, OBJECTS, PLACES } from './vocab.ts';

/** IOI corruption kind. */
export type IoiCorruption = 'abc' | 'swap';

/** Options for {@link generateIoi}. */
export interface IoiOptions {
  /** Number of prompt pairs (positive integer). */
  n: number;
  /** PRNG seed; the same seed gives the same dataset. */
  seed: number;
  corruption: IoiCorruption;
  /**
   * BABA templates (see ioi-templates.ts); ABBA mirrors are derived. Defaults to BABA_TEMPLATES.
   */
  templates?: readonly string[];
  /** Candidate names (plain words); filtered to those that are one token as " Name". */
  names?: readonly string[];
  places?: readonly string[];
  objects?: readonly string[];
}

/** Result of {@link filterSingleTokenWords}. */
export interface WordFilterResult {
  /** Words whose " word" is exactly one known token. */
  kept: string[];
  /** Words dropped, with their token count. */
  dropped: { word: string; tokens: number }[];
}

/**
 * Keeps the words that are a single token when preceded by a space (`tokenizer.singleToken(" " +
 * word)`), which also rejects words a word-level vocabulary maps to its unknown token.
 * Duplicates are removed (first occurrence kept).
 */
export function filterSingleTokenWords(tokenizer: TokenEncoder, words: readonly string[]): WordFilterResult {
  const kept: string[] = [];
  const dropped: { word: string; tokens: number }[] = [];
  const seen = new Set<string>();
  for (const raw of words) {
    const word = raw.trim();
    if (word === '' || seen.has(word)) continue;
    seen.add(word);
    try {
      tokenizer.singleToken(' ' + word);
      kept.push(word);
    } catch {
      dropped.push({ word, tokens: tokenizer.encode(' ' + word).length });
    }
  }
  return { kept, dropped };
}

/** Token id that " word" adds after `prompt` (see `answerInContext`); the error names the prompt. */
function tokenAfter(tokenizer: TokenEncoder, prompt: string, promptIds: number[], word: string): number {
  try {
    return answerInContext(tokenizer, prompt, ' ' + word, promptIds);
  } catch (e) {
    if (!(e instanceof AnswerInContextError)) throw e;
    throw new Error(`generateIoi: " ${word}" after the prompt ${JSON.stringify(prompt)} ${e.message}`);
  }
}

/** Picks `k` distinct items uniformly (partial Fisher-Yates on a copy). */
function sampleDistinct<T>(rand: () => number, items: readonly T[], k: number): T[] {
  const pool = items.slice();
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, k);
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)];
}

/**
 * Generates `n` IOI prompt pairs.
 *
 * Deterministic from `seed`: one PRNG is seeded once and drawn from for every sample (samples
 * differ from each other). Orders alternate BABA/ABBA (exactly half each for even `n`); the
 * template, names, place and object are drawn uniformly.
 *
 * Names, places and objects are filtered to those that are single tokens as " word" under
 * `tokenizer`; fewer than 3 names left is an error. `answerId` / `wrongId` are the tokens " IO" / " S"
 * add after the clean prompt (`answerInContext`). Each pair's `meta` holds: `template` (index into
 * the BABA list), `order` ("BABA"/"ABBA"), `io`, `s`, `c` (abc only), `place`, `object`, and the token
 * positions `ioPos`, `s1Pos`, `s2Pos`, `endPos` (last prompt token) in `cleanIds`.
 *
 * @throws if options are invalid, too few names survive the filter, clean and corrupt tokenize
 *   to different lengths, or a name does not add one token after the clean prompt.
 */
export function generateIoi(tokenizer: TokenEncoder, opts: IoiOptions): PromptPair[] {
  const { n, seed, corruption } = opts;
  if (!Number.isInteger(n) || n < 1) throw new Error(`generateIoi: n must be a positive integer, got ${n}`);
  if (!Number.isFinite(seed)) throw new Error(`generateIoi: seed must be a finite number, got ${seed}`);
  if (corruption !== 'abc' && corruption !== 'swap') {
    throw new Error(`generateIoi: corruption must be 'abc' or 'swap', got ${JSON.stringify(corruption)}`);
  }
  const baba = opts.templates ?? undefined;
  if (baba !== undefined && baba.length === 0) throw new Error('generateIoi: templates is empty');
  const templates: IoiTemplate[] = ioiTemplates(baba);
  const byOrder: Record<IoiOrder, { t: IoiTemplate; index: number }[]> = { BABA: [], ABBA: [] };
  templates.forEach((t, i) => byOrder[t.order].push({ t, index: Math.floor(i / 2) }));

  const names = filterSingleTokenWords(tokenizer, opts.names ?? NAMES);
  if (names.kept.length < 3) {
    const dropped = names.dropped.map((d) => `"${d.word}" (${d.tokens} tokens)`).join(', ');
    throw new Error(
      `generateIoi: need at least 3 names that are single tokens as " Name", found ${names.kept.length}` +
        (names.kept.length ? ` (${names.kept.join(', ')})` : '') +
        (dropped ? `; dropped: ${dropped}` : ''),
    );
  }
  const needsPlace = templates.some((t) => t.text.includes('[PLACE]'));
  const needsObject = templates.some((t) => t.text.includes('[OBJECT]'));
  const places = filterSingleTokenWords(tokenizer, opts.places ?? PLACES).kept;
  const objects = filterSingleTokenWords(tokenizer, opts.objects ?? OBJECTS).kept;
  if (needsPlace && places.length === 0) throw new Error('generateIoi: no place is a single token as " place"');
  if (needsObject && objects.length === 0) throw new Error('generateIoi: no object is a single token as " object"');

  const rand = mulberry32(seed); // seeded once for the whole dataset
  const pairs: PromptPair[] = [];
  for (let i = 0; i < n; i++) {
    const order: IoiOrder = i % 2 === 0 ? 'BABA' : 'ABBA';
    const { t, index } = pick(rand, byOrder[order]);
    const [io, s, c] = sampleDistinct(rand, names.kept, 3);
    const place = places.length ? pick(rand, places) : '';
    const object = objects.length ? pick(rand, objects) : '';

    const clean = fillTemplate(t.text, { io, s1: s, s2: s, place, object });
    const corrupt =
      corruption === 'abc'
        ? fillTemplate(t.text, { io, s1: s, s2: c, place, object })
        : fillTemplate(t.text, { io: s, s1: io, s2: io, place, object });
    const cleanIds = tokenizer.encodePrompt(clean);
    const corruptIds = tokenizer.encodePrompt(corrupt);
    if (cleanIds.length !== corruptIds.length) {
      throw new Error(
        `generateIoi: clean and corrupt prompts tokenize to different lengths (${cleanIds.length} vs ${corruptIds.length}):\n` +
          `  clean:   ${JSON.stringify(clean)}\n  corrupt: ${JSON.stringify(corrupt)}`,
      );
    }
    const answerId = tokenAfter(tokenizer, clean, cleanIds, io);
    const wrongId = tokenAfter(tokenizer, clean, cleanIds, s);
    const ioPos = cleanIds.indexOf(answerId);
    const s1Pos = cleanIds.indexOf(wrongId);
    const s2Pos = cleanIds.lastIndexOf(wrongId);
    if (ioPos < 0 || s1Pos < 0 || s2Pos <= s1Pos) {
      // Happens only if the tokenizer merges a name with its neighbours inside the prompt.
      throw new Error(
        `generateIoi: names do not appear as single tokens inside the prompt ${JSON.stringify(clean)} ` +
          `(template ${index}, ${order}); check the template's spacing/punctuation around names`,
      );
    }
    const meta: Record<string, string | number> = {
      template: index,
      order,
      io,
      s,
      place,
      object,
      ioPos,
      s1Pos,
      s2Pos,
      endPos: cleanIds.length - 1,
    };
    if (corruption === 'abc') meta.c = c;
    pairs.push({ clean, corrupt, answer: ' ' + io, wrong: ' ' + s, cleanIds, corruptIds, answerId, wrongId, meta });
  }
  return pairs;
}

/**
 * Groups pairs into batches of equal token length (sorted by length, input order kept within a
 * batch), so each batch stacks into [batch, length] token tensors without padding.
 *
 * @throws if a pair's clean and corrupt token lengths differ.
 */
export function groupByLength(pairs: readonly PromptPair[]): PairBatch[] {
  const groups = new Map<number, PromptPair[]>();
  pairs.forEach((p, i) => {
    if (p.cleanIds.length !== p.corruptIds.length) {
      throw new Error(
        `groupByLength: pair ${i} has clean length ${p.cleanIds.length} but corrupt length ${p.corruptIds.length}`,
      );
    }
    const len = p.cleanIds.length;
    const g = groups.get(len);
    if (g) g.push(p);
    else groups.set(len, [p]);
  });
  return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([length, ps]) => ({ pairs: ps, length }));
}

/** Splits a batch into consecutive batches of at most `maxSize` pairs (same length). */
export function splitBatches(batch: PairBatch, maxSize: number): PairBatch[] {
  if (!Number.isInteger(maxSize) || maxSize < 1) {
    throw new Error(`splitBatches: maxSize must be a positive integer, got ${maxSize}`);
  }
  const out: PairBatch[] = [];
  for (let i = 0; i < batch.pairs.length; i += maxSize) {
    out.push({ pairs: batch.pairs.slice(i, i + maxSize), length: batch.length });
  }
  return out;
}
