/**
 * Run files: `DIR/run.json`, the one format the CLI, the viewer and notebooks share.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PromptPair } from '../tasks/types.ts';
import type { MethodScores } from './score-grid.ts';

/** Current run-file version. */
export const RUN_VERSION = 1;

/** One recorded prompt pair, with ids. */
export interface RunPair {
  clean: string;
  corrupt: string;
  answer: string;
  wrong: string;
  clean_ids: number[];
  corrupt_ids: number[];
  answer_id: number;
  wrong_id: number;
}

/** The content of run.json. */
export interface RunFile {
  version: number;
  created: string;
  model: { path: string; config: Record<string, unknown>; sha256: string };
  dataset: { kind: string; seed?: number; corruption?: string; source?: string; pairs: RunPair[] };
  metric: { name: string; clean: number; corrupt: number; direction: string };
  /** scores[method][component] = {axes, shape, values}. */
  scores: Record<string, MethodScores>;
  /** Token strings of the first clean prompt, for the position axis. */
  labels: string[];
  /** LRP rule preset used by `relp` scores. */
  rules?: string;
  /** Seconds per method. */
  timings: Record<string, number>;
  backend?: string;
}

/** Convert prompt pairs to the run-file form. */
export function runPairs(pairs: readonly PromptPair[]): RunPair[] {
  return pairs.map((p) => ({
    clean: p.clean,
    corrupt: p.corrupt,
    answer: p.answer,
    wrong: p.wrong,
    clean_ids: p.cleanIds,
    corrupt_ids: p.corruptIds,
    answer_id: p.answerId,
    wrong_id: p.wrongId,
  }));
}

/** Write DIR/run.json atomically. */
export function writeRunFile(dir: string, run: RunFile): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'run.json');
  writeFileSync(`${path}.tmp`, JSON.stringify(run));
  renameSync(`${path}.tmp`, path);
  return path;
}

/** Read and check DIR/run.json (or a path to the file) with clear errors. */
export function readRunFile(dirOrFile: string): RunFile {
  const path = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'run.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: cannot read run file (${err instanceof Error ? err.message : String(err)})`);
  }
  const r = raw as Partial<RunFile>;
  for (const k of ['version', 'model', 'dataset', 'metric', 'scores'] as const) {
    if (r[k] === undefined) throw new Error(`${path}: not a relp run file (missing "${k}")`);
  }
  if (r.version !== RUN_VERSION) throw new Error(`${path}: run-file version ${String(r.version)} is not supported (expected ${RUN_VERSION})`);
  return r as RunFile;
}
