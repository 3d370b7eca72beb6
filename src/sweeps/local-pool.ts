/**
 * Local parallelism: shards on a piscina worker-thread pool, each thread with its own tfjs
 * backend and model. A shard whose thread crashes (or throws) is reported and retried once.
 */
import { Piscina } from 'piscina';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { SweepPlan } from './plan.ts';
import type { ShardResult } from './run-shard.ts';
import type { ShardTask } from './shard-thread.ts';

/** Options of {@link runLocal}. */
export interface LocalRunOptions {
  /** Threads (1 runs in this thread on `model`). */
  workers: number;
  /** The model for in-thread runs (workers = 1). */
  model?: HookedTransformer;
  /** Threads load this reference instead of the plan's. */
  modelOverride?: string;
  /** Called once per finished shard, in completion order. */
  onResult: (r: ShardResult) => void;
  /** Notes (crashes, retries) for the user; default stderr. */
  log?: (msg: string) => void;
}

// From source (tsx, vitest) threads need tsx registered first (thread-entry.js); compiled (dist/,
// the installed package) they load the compiled handler directly.
const ENTRY = import.meta.url.endsWith('.ts') ? new URL('./thread-entry.js', import.meta.url).href : new URL('./shard-thread.js', import.meta.url).href;

/** A pool of shard threads. */
export class ShardPool {
  private readonly pool: Piscina<ShardTask, ShardResult>;

  constructor(readonly threads: number) {
    // One task per thread at a time: each shard is a synchronous compute that fills its thread.
    this.pool = new Piscina<ShardTask, ShardResult>({ filename: ENTRY, minThreads: threads, maxThreads: threads, concurrentTasksPerWorker: 1, idleTimeout: 60_000 });
  }

  /** Run one shard on some thread. */
  run(task: ShardTask): Promise<ShardResult> {
    return this.pool.run(task);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Run shards `keys` of `plan` locally; resolves when all are done, rejects on a shard failing twice. */
export async function runLocal(plan: SweepPlan, planHash: string, keys: string[], opts: LocalRunOptions): Promise<void> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`relp: ${m}\n`));
  if (opts.workers <= 1 && opts.model) {
    // Loaded lazily: `relp worker`'s main thread never computes and need not load the sweeps.
    const { runShard, releaseShardSetup } = await import('./run-shard.ts');
    const { testHooks } = await import('./test-hooks.ts');
    try {
      for (const key of keys) {
        testHooks(key); // off unless a fault test sets its variables
        opts.onResult(await runShard(opts.model, plan, key, planHash));
      }
    } finally {
      releaseShardSetup(); // the plan is done: no tensors left behind in this thread
    }
    return;
  }
  const pool = new ShardPool(Math.max(1, opts.workers));
  try {
    const one = async (key: string): Promise<void> => {
      const task: ShardTask = { plan, key, planHash, modelOverride: opts.modelOverride };
      let r: ShardResult;
      try {
        r = await pool.run(task);
      } catch (err) {
        log(`worker failed on shard ${key} (${message(err)}); retrying it once`);
        try {
          r = await pool.run(task);
        } catch (err2) {
          throw new Error(`shard ${key} failed twice: ${message(err2)}`);
        }
      }
      opts.onResult(r);
    };
    const results = await Promise.allSettled(keys.map(one));
    const bad = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (bad) throw bad.reason;
  } finally {
    await pool.close();
  }
}
