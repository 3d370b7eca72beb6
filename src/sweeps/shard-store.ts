/**
 * "Shards done": the finished shards of a run, in OUT/progress.json, bound to the plan's hash.
 * Resume, local parallel runs and distributed runs all read and extend this one file: a shard in
 * it is never computed again.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ShardResult } from './run-shard.ts';

/** The file's content. */
export interface ShardStoreFile {
  /** The plan hash the shards belong to. */
  key: string;
  done: Record<string, ShardResult>;
}

/** Finished shards of one plan, saved atomically after each addition. */
export class ShardStore {
  readonly done: Record<string, ShardResult>;

  /**
   * Open `path` (undefined: in memory only). Shards of another plan, or a torn / foreign file,
   * are ignored (a new run starts over rather than trust them).
   */
  constructor(
    readonly path: string | undefined,
    readonly planHash: string,
  ) {
    this.done = {};
    if (!path || !existsSync(path)) return;
    try {
      const f = JSON.parse(readFileSync(path, 'utf8')) as ShardStoreFile;
      if (f.key === planHash && f.done && typeof f.done === 'object') Object.assign(this.done, f.done);
    } catch {
      // torn or foreign: start over
    }
  }

  /** The store of a run folder: OUT/progress.json. */
  static forRun(out: string | undefined, planHash: string): ShardStore {
    return new ShardStore(out ? join(out, 'progress.json') : undefined, planHash);
  }

  has(key: string): boolean {
    return key in this.done;
  }

  /** Record a finished shard and save (write then rename, so a kill never leaves a torn file). */
  add(r: ShardResult): void {
    this.done[r.key] = r;
    if (!this.path) return;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ key: this.planHash, done: this.done } satisfies ShardStoreFile));
    renameSync(tmp, this.path);
  }
}
