/**
 * Build the prompt pairs of a sweep from a task name or a JSONL file. Sweeps patch every
 * prompt at the same (layer, position), so IOI prompts are drawn from one token length.
 */
import { generateIoi, groupByLength, type IoiCorruption } from './ioi.ts';
import { loadJsonlDataset } from './jsonl.ts';
import type { PromptPair, TokenEncoder } from './types.ts';

/**
 * The built-in IOI task's defaults, one set for `relp demo`, `relp patch` and `relp circuit` (so the
 * same flags draw the same prompts in each): 64 pairs, seed 0, corrupted by swapping the names as
 * the RelP paper does (the answer flips); `abc` (a third name) is the option.
 */
export const IOI_DEFAULTS: { readonly n: number; readonly seed: number; readonly corruption: IoiCorruption } = Object.freeze({ n: 64, seed: 0, corruption: 'swap' });

/** Where the pairs come from. */
export type DatasetSpec =
  | { kind: 'ioi'; n: number; seed: number; corruption: IoiCorruption }
  | { kind: 'jsonl'; path: string };

/**
 * IOI pairs of one token length: generate, group by length and keep the largest group,
 * drawing more prompts (deterministically) until it holds `n`.
 */
export function ioiSameLength(tok: TokenEncoder, n: number, seed: number, corruption: IoiCorruption): PromptPair[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`n must be a positive integer, got ${n}`);
  for (let factor = 4; factor <= 64; factor *= 2) {
    const groups = groupByLength(generateIoi(tok, { n: n * factor, seed, corruption }));
    const best = groups.reduce((a, b) => (b.pairs.length > a.pairs.length ? b : a));
    if (best.pairs.length >= n) return best.pairs.slice(0, n);
  }
  throw new Error(`could not draw ${n} IOI prompts of one token length; ask for fewer (a smaller n)`);
}

/** Load the pairs of a dataset spec; JSONL pairs must all share one length (checked later). */
export function loadDataset(tok: TokenEncoder, spec: DatasetSpec): PromptPair[] {
  return spec.kind === 'ioi' ? ioiSameLength(tok, spec.n, spec.seed, spec.corruption) : loadJsonlDataset(spec.path, tok);
}

/** Task name and seed of a dataset spec, as recorded in every file's provenance. */
export function datasetTask(spec: DatasetSpec): { task: string; seed: number | null } {
  return spec.kind === 'ioi' ? { task: 'ioi', seed: spec.seed } : { task: spec.path, seed: null };
}

/** What run.json records about its prompts besides the pairs: the task (`kind`) and its seed and corruption, or the JSONL file. */
export interface DatasetRecord {
  kind: string;
  seed?: number;
  corruption?: string;
  source?: string;
}

/** The `dataset` record of run.json for a spec (pairs added by the writer). */
export function datasetRecord(spec: DatasetSpec): DatasetRecord {
  return spec.kind === 'ioi' ? { kind: 'ioi', seed: spec.seed, corruption: spec.corruption } : { kind: 'jsonl', source: spec.path };
}
