/**
 * The distributed coordinator: puts a plan's missing shards on a BullMQ queue and collects the
 * results, checking each against its key and the model's weight hash. It keeps no state of its
 * own beyond the shard store, so after a restart it finds the same job ids on the queue (finished
 * ones included) and never recomputes a stored shard. Jobs that vanish (Redis restarted without
 * persistence) are enqueued again.
 */
import { Job, Queue, QueueEvents } from 'bullmq';
import { checkShardResult } from './merge.ts';
import type { SweepPlan } from './plan.ts';
import type { ShardResult } from './run-shard.ts';
import type { ShardTask } from './shard-thread.ts';
import { parseQueueUrl, shardJobId } from './queue-url.ts';

/** Options of {@link runQueued}. */
export interface QueuedRunOptions {
  /** redis://HOST:PORT/NAME */
  url: string;
  onResult: (r: ShardResult) => void;
  log?: (msg: string) => void;
  /** Give up when Redis stays unreachable this long (default 60 s; env RELP_REDIS_TIMEOUT_S). */
  redisTimeoutS?: number;
  /** Refused results per shard before the run stops (default 10). */
  maxRefusals?: number;
  /** Poll period in ms (events wake it earlier; default 1000). */
  pollMs?: number;
}

/** Worker-side job payload: the shard task without a model override. */
export type ShardJobData = Omit<ShardTask, 'modelOverride'>;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

/** Enqueue shards `keys` of `plan` and wait for all of them. */
export async function runQueued(plan: SweepPlan, planHash: string, keys: string[], opts: QueuedRunOptions): Promise<void> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`relp: ${m}\n`));
  const target = parseQueueUrl(opts.url);
  const timeoutMs = 1000 * (opts.redisTimeoutS ?? Number(process.env.RELP_REDIS_TIMEOUT_S ?? 60));
  const maxRefusals = opts.maxRefusals ?? 10;
  const queue = new Queue<ShardJobData, ShardResult>(target.name, { connection: target.connection });
  const events = new QueueEvents(target.name, { connection: target.connection });
  // Connection errors are retried by ioredis; say so once per outage instead of throwing.
  let down = false;
  const onError = (err: Error) => {
    if (!down) log(`lost Redis at ${target.display} (${err.message}); retrying`);
    down = true;
  };
  queue.on('error', onError);
  events.on('error', onError);
  const pending = new Map<string, { jobId: string; refusals: number }>();
  const add = (key: string, jobId: string) =>
    queue.add('shard', { plan, key, planHash }, { jobId, attempts: 2, removeOnComplete: false, removeOnFail: false });
  // Events name the jobs to look at now; a periodic full check catches what events miss
  // (a coordinator restart, a Redis restart).
  let wake: (() => void) | undefined;
  const dirty = new Set<string>();
  const onEvent = ({ jobId }: { jobId: string }) => {
    dirty.add(jobId);
    wake?.();
  };
  events.on('completed', onEvent);
  events.on('failed', onEvent);
  try {
    await withTimeout(queue.waitUntilReady(), timeoutMs, `connecting to Redis at ${target.display}`);
    for (const key of keys) {
      const jobId = shardJobId(planHash, key);
      pending.set(key, { jobId, refusals: 0 });
      const job = await Job.fromId<ShardJobData, ShardResult>(queue, jobId);
      if (!job) await add(key, jobId);
      else if ((await job.getState()) === 'failed') await job.retry('failed'); // failed before a restart: try again
    }
    let lastOk = Date.now();
    const check = async (only?: Set<string>) => {
      for (const [key, p] of [...pending]) {
        if (only && !only.has(p.jobId)) continue;
        const job = await Job.fromId<ShardJobData, ShardResult>(queue, p.jobId);
        if (!job) {
          log(`shard ${key}: its job is gone from the queue (Redis restarted?); enqueued again`);
          await add(key, p.jobId);
          continue;
        }
        const state = await job.getState();
        if (state === 'failed') throw new Error(`shard ${key} failed on the workers (tried twice): ${job.failedReason}`);
        if (state !== 'completed') continue;
        const err = checkShardResult(plan, planHash, key, job.returnvalue);
        await job.remove();
        if (err) {
          p.refusals++;
          log(`refused a result: ${err}`);
          if (p.refusals >= maxRefusals) throw new Error(`shard ${key}: ${p.refusals} results refused (${err}); check that every worker runs the run's model`);
          p.jobId = shardJobId(planHash, key, p.refusals);
          await add(key, p.jobId);
          continue;
        }
        opts.onResult(job.returnvalue);
        pending.delete(key);
      }
    };
    let lastFull = 0;
    const pollMs = opts.pollMs ?? 1000;
    while (pending.size > 0) {
      if (dirty.size === 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, pollMs);
          wake = () => (clearTimeout(t), resolve());
        });
      }
      const full = Date.now() - lastFull >= pollMs;
      const only = full ? undefined : new Set(dirty);
      dirty.clear();
      try {
        await withTimeout(check(only), Math.min(timeoutMs, 15_000), 'checking the queue');
        if (full) lastFull = Date.now();
        if (down) log(`Redis at ${target.display} is back`);
        down = false;
        lastOk = Date.now();
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (/failed on the workers|results refused/.test(msg)) throw err;
        if (Date.now() - lastOk > timeoutMs) {
          throw new Error(`Redis at ${target.display} unreachable for ${Math.round(timeoutMs / 1000)} s (${msg}); finished shards are saved: run the same command again to resume`);
        }
      }
    }
  } finally {
    wake = undefined;
    await Promise.allSettled([withTimeout(events.close(), 3000, 'close'), withTimeout(queue.close(), 3000, 'close')]);
  }
}
