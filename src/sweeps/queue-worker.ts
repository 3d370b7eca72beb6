/**
 * `relp worker`: takes shards from a BullMQ queue and runs them on a local thread pool (so this
 * thread's event loop stays free to renew job locks during long shards). A worker killed
 * mid-shard stops renewing its lock and BullMQ's stalled-job check hands the shard to another.
 */
import { Worker, type Job } from 'bullmq';
import { ShardPool } from './local-pool.ts';
import { parseQueueUrl } from './queue-url.ts';
import { capWorkers } from './worker-memory.ts';
import type { ShardJobData } from './coordinator.ts';
import type { ShardResult } from './run-shard.ts';

/** Options of {@link startQueueWorker}. */
export interface QueueWorkerOptions {
  url: string;
  /** Threads, and jobs taken at once. */
  workers: number;
  /** Load this model instead of the plan's reference. */
  modelOverride?: string;
  log?: (msg: string) => void;
  /** Job lock in ms (default 30 s; env RELP_QUEUE_LOCK_MS): how soon a killed worker's shard is retried. */
  lockMs?: number;
}

/** A running queue worker. */
export interface QueueWorkerHandle {
  /** Finish the running shards, then stop. */
  close(): Promise<void>;
  done: number;
}

/** Start consuming shards. */
export async function startQueueWorker(opts: QueueWorkerOptions): Promise<QueueWorkerHandle> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`relp worker: ${m}\n`));
  const target = parseQueueUrl(opts.url);
  const lockMs = opts.lockMs ?? Number(process.env.RELP_QUEUE_LOCK_MS ?? 30_000);
  const pool = new ShardPool(opts.workers);
  const handle = { done: 0, close: async () => {} };
  const warned = new Set<string>();
  const sized = new Set<string>();
  // Set below; the processor only runs after the worker exists.
  let worker: Worker<ShardJobData, ShardResult> | undefined;
  const capFor = (d: ShardJobData) => {
    // The model is known from the first job of a run: take fewer jobs at once when N copies do not fit.
    if (sized.has(d.planHash)) return;
    sized.add(d.planHash);
    const cap = capWorkers(opts.workers, d.plan.model.config, d.plan.pairs[0].cleanIds.length, d.plan.batch);
    if (cap.note && worker) {
      log(cap.note);
      worker.concurrency = cap.workers;
    }
  };
  worker = new Worker<ShardJobData, ShardResult>(
    target.name,
    async (job: Job<ShardJobData, ShardResult>) => {
      capFor(job.data);
      const r = await pool.run({ ...job.data, modelOverride: opts.modelOverride });
      if (r.modelHash !== job.data.plan.model.hash && !warned.has(job.data.planHash)) {
        warned.add(job.data.planHash);
        log(`warning: this worker's model (weight hash ${r.modelHash.slice(0, 12)}…) is not the run's (${job.data.plan.model.hash.slice(0, 12)}…); the coordinator will refuse its results`);
      }
      handle.done++;
      return r;
    },
    { connection: target.connection, concurrency: opts.workers, lockDuration: lockMs, stalledInterval: Math.max(500, Math.floor(lockMs / 2)), maxStalledCount: 2 },
  );
  let down = false;
  worker.on('error', (err) => {
    if (!down) log(`Redis at ${target.display}: ${err.message}; retrying`);
    down = true;
  });
  worker.on('ready', () => (down = false));
  worker.on('failed', (job, err) => log(`shard ${job?.data.key ?? '?'} failed: ${err.message}`));
  await worker.waitUntilReady();
  log(`${opts.workers} thread(s) on ${target.display}`);
  const w = worker;
  handle.close = async () => {
    await w.close();
    await pool.close();
  };
  return handle;
}
