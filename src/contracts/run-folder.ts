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

/**
 * Readable facts about a run beside its provenance hashes (where known), so a refusal can say
 * "n 64 → 16" instead of two dataset hashes.
 */
export interface RunFacts {
  /** Number of prompt pairs. */
  n?: number;
  /** IOI corruption (`abc`, `swap`). */
  corruption?: string;
  /** The model's folder (or hub id). */
  model?: string;
}

/** A run as a refusal describes it: provenance plus the readable facts a file records. */
type RunView = Pick<Provenance, 'task' | 'seed'> & RunFacts;

/** The readable fields that tell prompts apart, then the one that tells models apart. */
const PROMPT_FIELDS = ['task', 'seed', 'n', 'corruption'] as const;
const MODEL_FIELDS = ['model'] as const;

/** `field a → b` for each field of `fields` known on both sides and different. */
function changed(a: RunView, b: RunView, fields: readonly (keyof RunView)[]): string[] {
  return fields.filter((f) => a[f] != null && b[f] != null && a[f] !== b[f]).map((f) => `${f} ${String(a[f])} → ${String(b[f])}`);
}

/** One thing that differs: a readable field, or (when none explains it) a shortened hash. */
interface Change {
  group: 'prompts' | 'model';
  text: string;
  hash: boolean;
}

/** What differs between `existing` and `next` (nothing when they are the same run: the hashes decide). */
function difference(existing: Provenance, old: RunView, next: Provenance, now: RunView): Change[] {
  const out: Change[] = [];
  const group = (name: Change['group'], fields: readonly (keyof RunView)[], a: string, b: string) => {
    const readable = changed(old, now, fields);
    if (readable.length) out.push(...readable.map((text) => ({ group: name, text, hash: false })));
    else out.push({ group: name, text: `${name} sha256 ${a.slice(0, 12)} → ${b.slice(0, 12)}`, hash: true });
  };
  if (existing.dataset_sha256 !== next.dataset_sha256) group('prompts', PROMPT_FIELDS, existing.dataset_sha256, next.dataset_sha256);
  if (existing.model_sha256 !== null && next.model_sha256 !== null && existing.model_sha256 !== next.model_sha256) group('model', MODEL_FIELDS, existing.model_sha256, next.model_sha256);
  return out;
}

/**
 * The changes of all files as one list: each readable change once, and a group's hash only when
 * no file names a readable field for it (an older file may record fewer facts than another).
 */
function mergeChanges(changes: Change[]): string[] {
  const readableGroups = new Set(changes.filter((c) => !c.hash).map((c) => c.group));
  return [...new Set(changes.filter((c) => !c.hash || !readableGroups.has(c.group)).map((c) => c.text))];
}

/** The provenance and readable facts a file of the folder records (null: it records no provenance). */
function readFolderFile(path: string, file: (typeof RUN_FOLDER_FILES)[number]): { provenance: Provenance; facts: RunFacts } | null {
  if (file === 'run.json') {
    const run = readRunFile(path);
    return { provenance: run.provenance, facts: { n: run.dataset.pairs.length, corruption: run.dataset.corruption, model: run.model.path } };
  }
  if (file === 'circuit.json') {
    const c = readCircuitFile(path);
    const m = c.metadata as Record<string, unknown>;
    const facts = { n: typeof m.prompts === 'number' ? m.prompts : undefined, corruption: typeof m.corruption === 'string' ? m.corruption : undefined, model: c.metadata.model };
    return c.provenance && { provenance: c.provenance, facts };
  }
  const f = readFaithfulnessFile(path);
  return f.provenance && { provenance: f.provenance, facts: {} };
}

/** Refusal to write into a run folder that holds another run's results. */
export class RunFolderConflictError extends Error {
  /** The folder. */
  readonly dir: string;
  /** What differs (`n 64 → 16`, …), or why a file could not be compared; one entry per kind of conflict. */
  readonly differences: string[];
  /** The files a forced new run removes. */
  readonly files: string[];

  constructor(dir: string, differences: string[]) {
    const files = [...RUN_FOLDER_FILES, CHECKPOINT];
    super(`${dir} holds another run: ${differences.join('; ')}; write to another folder, or pass force to start a new run there (removes its ${files.join(', ')})`);
    this.name = 'RunFolderConflictError';
    this.dir = dir;
    this.differences = differences;
    this.files = files;
  }
}

/** Options of {@link prepareRunFolder}. */
export interface RunFolderOptions {
  /** Start a new run: remove the folder's relp files that belong to another run. */
  force?: boolean;
  /** Readable facts about the new run, to name what differs from the folder's run. */
  facts?: RunFacts;
}

/** The folder's conflicts with the new run: what differs, and files that cannot be compared. */
function conflicts(dir: string, next: Provenance, facts: RunFacts): { changes: Change[]; notes: string[] } {
  const changes: Change[] = [];
  const notes: string[] = [];
  const now: RunView = { task: next.task, seed: next.seed, ...facts };
  for (const file of RUN_FOLDER_FILES) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    let existing: ReturnType<typeof readFolderFile>;
    try {
      existing = readFolderFile(path, file);
    } catch (err) {
      notes.push(`${file} cannot be checked (${err instanceof Error ? err.message : String(err)})`);
      continue;
    }
    if (existing === null) {
      notes.push(`${file} records no provenance (written before relp recorded its prompts), so it may be another run`);
      continue;
    }
    const old: RunView = { task: existing.provenance.task, seed: existing.provenance.seed, ...existing.facts };
    changes.push(...difference(existing.provenance, old, next, now));
  }
  return { changes, notes };
}

/**
 * Check that `dir` holds no result of another run before writing one with `next` provenance.
 * With `force`, the other run's files (and its sweep checkpoint) are removed instead.
 * @throws RunFolderConflictError naming only what differs (readable fields where known, else hashes).
 */
export function prepareRunFolder(dir: string, next: Provenance, opts: RunFolderOptions = {}): void {
  const { changes, notes } = conflicts(dir, next, opts.facts ?? {});
  if (changes.length === 0 && notes.length === 0) return;
  if (opts.force) {
    for (const f of [...RUN_FOLDER_FILES, CHECKPOINT]) rmSync(join(dir, f), { force: true });
    return;
  }
  const merged = mergeChanges(changes);
  throw new RunFolderConflictError(dir, [...(merged.length ? [merged.join(', ')] : []), ...notes]);
}
