/**
 * Run ids and the files the viewer may read. The viewer only ever opens
 * `RUNS_DIR/<id>/<one of RUN_FILES>`, and only when the real path (symlinks resolved) stays
 * inside the real RUNS_DIR. This is the whole file-access surface of the server.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ViewerDataError } from './errors.ts';

/**
 * A run id: 1–128 of `[A-Za-z0-9._-]`, not starting with a dot (so never `.`, `..` or a hidden
 * directory). Route parameters are already URL-decoded when checked, so `..%2F..` arrives here as
 * `../..` and fails; separators, backslashes, `%` and absolute paths can never match.
 */
export const RUN_ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** The only file names inside a run directory that the viewer reads. */
export const RUN_FILES = ['run.json', 'circuit.json', 'faithfulness.json'] as const;
export type RunFileName = (typeof RUN_FILES)[number];

/** True when `id` is an acceptable run id (see {@link RUN_ID_PATTERN}). */
export function isValidRunId(id: unknown): id is string {
  return typeof id === 'string' && RUN_ID_PATTERN.test(id);
}

/** True when `child` is `root` itself or lies below it (both absolute, normalised). */
export function isInside(root: string, child: string): boolean {
  const rel = path.relative(root, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The real path of the runs directory; a clear 500 error when it is missing. */
export async function realRunsDir(runsDir: string): Promise<string> {
  try {
    return await fs.realpath(path.resolve(runsDir));
  } catch (err) {
    throw new ViewerDataError(500, `runs directory ${JSON.stringify(runsDir)} cannot be opened: ${errCode(err)}`);
  }
}

/**
 * Resolve `RUNS_DIR/<id>/<file>` to its real path, checking the id, the file name and that the
 * result (after following symlinks) is inside the runs directory.
 * @throws ViewerDataError 404 for a bad id, a missing file, or a path that escapes RUNS_DIR
 *   (reported as missing, so the server says nothing about what lies outside).
 */
export async function resolveRunFile(runsDir: string, id: string, file: RunFileName): Promise<string> {
  if (!isValidRunId(id)) throw new ViewerDataError(404, `invalid run id`);
  if (!(RUN_FILES as readonly string[]).includes(file)) throw new ViewerDataError(404, `not a run file: ${file}`);
  const root = await realRunsDir(runsDir);
  const lexical = path.join(root, id, file);
  if (!isInside(root, lexical)) throw new ViewerDataError(404, `run ${id} not found`);
  let real: string;
  try {
    real = await fs.realpath(lexical);
  } catch (err) {
    if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') throw new ViewerDataError(404, `run ${id} has no ${file}`);
    throw new ViewerDataError(500, `cannot open ${file} of run ${id}: ${errCode(err)}`);
  }
  // Why: a symlink inside RUNS_DIR may point anywhere; only targets inside RUNS_DIR are served.
  if (!isInside(root, real)) throw new ViewerDataError(404, `run ${id} has no ${file}`);
  return real;
}

/**
 * The real path of the run directory `RUNS_DIR/<id>` if it is a directory inside RUNS_DIR, else null.
 */
export async function resolveRunDir(root: string, id: string): Promise<string | null> {
  if (!isValidRunId(id)) return null;
  try {
    const real = await fs.realpath(path.join(root, id));
    if (!isInside(root, real) || real === root) return null;
    const st = await fs.stat(real);
    return st.isDirectory() ? real : null;
  } catch {
    return null;
  }
}

/** The `code` of a Node system error, or its message. */
export function errCode(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return err instanceof Error ? err.message : String(err);
}
