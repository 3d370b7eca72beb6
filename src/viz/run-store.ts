/**
 * Read-only access to a runs directory: list runs, and load + validate their JSON files.
 * Parsed files are cached by (real path, mtime, size), so a re-written run is picked up on the
 * next request and a 32k-edge circuit is parsed once.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ViewerDataError } from './errors.ts';
import { parseJsonText } from '../contracts/json-text.ts';
import { ContractError } from '../contracts/errors.ts';
import { RUN_FILES, errCode, isInside, isValidRunId, realRunsDir, resolveRunDir, resolveRunFile, type RunFileName } from './safe-path.ts';
import { parseCircuitFile, type CircuitFile } from '../contracts/circuit.ts';
import { parseFaithfulnessFile, type FaithfulnessFile } from '../contracts/faithfulness.ts';
import { parseRunFile, type RunFile } from '../contracts/run.ts';
import { METHOD_ORDER, orderBy } from '../patching/names.ts';
import type { RunSummary } from './types.ts';

/** Files larger than this are refused (422) rather than read into memory. */
export const MAX_FILE_BYTES = 512 * 1024 * 1024;

/**
 * A validated file with its bytes. `raw` is the file as-is when it is in the current version
 * (large circuits are not re-serialised), else the file upgraded to the current version, so the
 * pages only ever see one version of each file.
 */
export interface LoadedFile<T> {
  data: T;
  raw: Buffer;
  mtimeMs: number;
}

interface CacheEntry {
  mtimeMs: number;
  size: number;
  value: LoadedFile<unknown> | ViewerDataError;
}

/** The contracts' readers; `current` says whether the parsed file was already the current version. */
const READERS: Record<RunFileName, (raw: unknown, label: string) => { data: unknown; current: boolean }> = {
  'run.json': (raw, label) => ({ data: parseRunFile(raw, label), current: (raw as { version?: unknown }).version === 2 }),
  'circuit.json': (raw, label) => ({ data: parseCircuitFile(raw, label), current: true }),
  'faithfulness.json': (raw, label) => ({ data: parseFaithfulnessFile(raw, label), current: false }),
};

/** Read-only view of one runs directory. */
export class RunStore {
  readonly runsDir: string;
  private cache = new Map<string, CacheEntry>();

  constructor(runsDir: string) {
    this.runsDir = path.resolve(runsDir);
  }

  /** Load and validate `run.json` of run `id`. @throws ViewerDataError 404/422/500 */
  loadRun(id: string): Promise<LoadedFile<RunFile>> {
    return this.load(id, 'run.json') as Promise<LoadedFile<RunFile>>;
  }

  /** Load and validate `circuit.json` of run `id`. @throws ViewerDataError 404/422/500 */
  loadCircuit(id: string): Promise<LoadedFile<CircuitFile>> {
    return this.load(id, 'circuit.json') as Promise<LoadedFile<CircuitFile>>;
  }

  /** Load and validate `faithfulness.json` of run `id` (curves as a list, whatever the file's version). */
  loadFaithfulness(id: string): Promise<LoadedFile<FaithfulnessFile>> {
    return this.load(id, 'faithfulness.json') as Promise<LoadedFile<FaithfulnessFile>>;
  }

  /** Resolve, read, parse and validate one run file, through the cache. */
  async load(id: string, file: RunFileName): Promise<LoadedFile<unknown>> {
    const real = await resolveRunFile(this.runsDir, id, file);
    const label = `${id}/${file}`;
    let st;
    try {
      st = await fs.stat(real);
    } catch (err) {
      throw new ViewerDataError(500, `cannot read ${label}: ${errCode(err)}`);
    }
    if (!st.isFile()) throw new ViewerDataError(422, `${label} is not a regular file`);
    if (st.size > MAX_FILE_BYTES) throw new ViewerDataError(422, `${label} is ${st.size} bytes, larger than the viewer's limit of ${MAX_FILE_BYTES}`);
    const hit = this.cache.get(real);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) {
      if (hit.value instanceof ViewerDataError) throw hit.value;
      return hit.value;
    }
    let raw: Buffer;
    try {
      raw = await fs.readFile(real);
    } catch (err) {
      throw new ViewerDataError(500, `cannot read ${label}: ${errCode(err)}`);
    }
    let value: LoadedFile<unknown> | ViewerDataError;
    try {
      const { data, current } = READERS[file](parseJsonText(raw.toString('utf8'), label), label);
      value = { data, raw: current ? raw : Buffer.from(JSON.stringify(data)), mtimeMs: st.mtimeMs };
    } catch (err) {
      value = err instanceof ContractError ? new ViewerDataError(422, err.message) : err instanceof ViewerDataError ? err : new ViewerDataError(422, `${label}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.cache.set(real, { mtimeMs: st.mtimeMs, size: raw.length, value });
    if (value instanceof ViewerDataError) throw value;
    return value;
  }

  /** Ids of the run directories (valid names, real path inside the runs directory), sorted. */
  async runIds(): Promise<string[]> {
    const root = await realRunsDir(this.runsDir);
    let entries;
    try {
      entries = await fs.readdir(root, { withFileTypes: true });
    } catch (err) {
      throw new ViewerDataError(500, `cannot list runs directory: ${errCode(err)}`);
    }
    const ids: string[] = [];
    for (const e of entries) {
      if (!isValidRunId(e.name) || !(e.isDirectory() || e.isSymbolicLink())) continue;
      if (await resolveRunDir(root, e.name)) ids.push(e.name);
    }
    return ids.sort();
  }

  /** One summary row per run (never throws for a broken run: its `error` is set instead). */
  async list(): Promise<RunSummary[]> {
    const ids = await this.runIds();
    const out: RunSummary[] = [];
    for (const id of ids) {
      const s = await this.summary(id);
      if (s.hasRun || s.hasCircuit || s.hasFaithfulness) out.push(s);
    }
    return out.sort((a, b) => (b.date ?? '').localeCompare(a.date ?? '') || a.id.localeCompare(b.id));
  }

  /** Summary of one run directory. */
  async summary(id: string): Promise<RunSummary> {
    const root = await realRunsDir(this.runsDir);
    const s: RunSummary = { id, model: null, task: null, seed: null, methods: [], date: null, size: 0, hasRun: false, hasCircuit: false, hasFaithfulness: false, error: null };
    const errors: string[] = [];
    let newest = 0;
    const methods = new Set<string>();
    for (const file of RUN_FILES) {
      const real = await realFileInside(root, id, file);
      if (!real) continue;
      const st = await fs.stat(real).catch(() => null);
      if (!st?.isFile()) continue;
      s.size += st.size;
      newest = Math.max(newest, st.mtimeMs);
      if (file === 'run.json') s.hasRun = true;
      if (file === 'circuit.json') s.hasCircuit = true;
      if (file === 'faithfulness.json') s.hasFaithfulness = true;
      try {
        const { data } = await this.load(id, file);
        if (file === 'run.json') {
          const run = data as RunFile;
          s.model = run.model.path ? path.basename(run.model.path) : (typeof run.model.config?.name === 'string' ? run.model.config.name : null);
          s.task = run.provenance.task;
          s.seed = run.provenance.seed;
          Object.keys(run.scores).forEach((m) => methods.add(m));
          if (run.created && !Number.isNaN(Date.parse(run.created))) s.date = new Date(run.created).toISOString();
        } else if (file === 'circuit.json') {
          const c = data as CircuitFile;
          if (!s.model && typeof c.metadata.model === 'string') s.model = c.metadata.model;
          if (!s.task && typeof c.metadata.task === 'string') s.task = c.metadata.task;
          if (s.seed === null && c.provenance) s.seed = c.provenance.seed;
          (c.metadata.methods ?? (typeof c.metadata.method === 'string' ? [c.metadata.method] : [])).forEach((m) => methods.add(m));
        }
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
    s.methods = orderBy(methods, METHOD_ORDER);
    if (!s.date && newest > 0) s.date = new Date(newest).toISOString();
    s.error = errors.length ? errors.join('; ') : null;
    return s;
  }
}

/** Real path of `root/id/file` if it exists and stays inside `root`, else null. */
async function realFileInside(root: string, id: string, file: string): Promise<string | null> {
  try {
    const real = await fs.realpath(path.join(root, id, file));
    return isInside(root, real) ? real : null;
  } catch {
    return null;
  }
}
