/**
 * One run folder = one set of prompts on one model. Before a producer writes into a folder it
 * checks the provenance of the files already there, so `patch` and `circuit` results for
 * different prompts never end up side by side (the viewer would show them as one run).
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readCircuitFile } from './circuit.ts';
import { readFaithfulnessFile } from './faithfulness.ts';
import type { Provenance } from './provenance.ts';
import { readRunFile } from './run.ts';

/** The files of a run folder that carry provenance, plus the sweep checkpoint. */
export const RUN_FOLDER_FILES = ['run.json', 'circuit.json', 'faithfulness.json'] as const;
const CHECKPOINT = 'progress.json';

/** Short description of a provenance for messages. */
export function describeProvenance(p: Provenance): string {
  return `task ${p.task}${p.seed === null ? '' : `, seed ${p.seed}`}, dataset sha256 ${p.dataset_sha256.slice(0, 12)}…, model sha256 ${p.model_sha256 === null ? 'unknown' : `${p.model_sha256.slice(0, 12)}…`}`;
}

/** Why `existing` is not the same run as `next`, or null when it is. */
function difference(existing: Provenance, next: Provenance): string | null {
  if (existing.dataset_sha256 !== next.dataset_sha256) return 'other prompts';
  if (existing.model_sha256 !== null && next.model_sha256 !== null && existing.model_sha256 !== next.model_sha256) return 'another model';
  return null;
}

/** Options of {@link prepareRunFolder}. */
export interface RunFolderOptions {
  /** Start a new run: remove the folder's relp files that belong to another run. */
  force?: boolean;
}

/**
 * Check that `dir` holds no result of another run before writing one with `next` provenance.
 * With `force`, the other run's files (and its sweep checkpoint) are removed instead.
 * @throws Error naming the file, both provenances and the two ways out.
 */
export function prepareRunFolder(dir: string, next: Provenance, opts: RunFolderOptions = {}): void {
  const conflicts: string[] = [];
  for (const file of RUN_FOLDER_FILES) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    let existing: Provenance | null;
    try {
      existing = file === 'run.json' ? readRunFile(path).provenance : file === 'circuit.json' ? readCircuitFile(path).provenance : readFaithfulnessFile(path).provenance;
    } catch (err) {
      conflicts.push(`${file} cannot be checked (${err instanceof Error ? err.message : String(err)})`);
      continue;
    }
    if (existing === null) {
      conflicts.push(`${file} records no provenance (written before relp recorded its prompts), so it may be another run`);
      continue;
    }
    const why = difference(existing, next);
    if (why) conflicts.push(`${file} is a result for ${why} (${describeProvenance(existing)})`);
  }
  if (conflicts.length === 0) return;
  if (opts.force) {
    for (const f of [...RUN_FOLDER_FILES, CHECKPOINT]) rmSync(join(dir, f), { force: true });
    return;
  }
  throw new Error(
    `${dir} already holds another run: ${conflicts.join('; ')}. This run is ${describeProvenance(next)}. ` +
      'Write to another --out folder, or pass --force to start a new run there (its run.json, circuit.json, faithfulness.json and progress.json are removed).',
  );
}
