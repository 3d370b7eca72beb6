/**
 * `relp worker --queue redis://HOST:PORT/NAME [--workers N] [--model DIR]`: serve the shards of
 * `relp patch … --queue` runs from any machine until stopped (SIGINT / SIGTERM finish the shards
 * in hand first).
 */
import type { Command } from 'commander';
import { startQueueWorker } from '../../sweeps/queue-worker.ts';
import { defaultWorkers } from '../../sweeps/sharded-sweep.ts';
import { modelRef } from '../../sweeps/model-source.ts';
import { positiveInt } from '../shared.ts';

export function register(program: Command): void {
  program
    .command('worker')
    .description('Take sweep shards from a BullMQ queue on Redis and return their results (see `relp patch --queue`).')
    .requiredOption('--queue <url>', 'redis://HOST:PORT/NAME (the same URL as the coordinator)')
    .option('--workers <n>', 'threads, each with its own model (default: the number of cores)', positiveInt)
    .option('--model <dir|hf-id>', "load this model instead of the run's (e.g. where it lives on this machine); its weight hash must match")
    .action(async (o: { queue: string; workers?: number; model?: string }) => {
      // No backend here: this thread only talks to Redis; the pool's threads compute.
      const w = await startQueueWorker({ url: o.queue, workers: o.workers ?? defaultWorkers(), modelOverride: o.model === undefined ? undefined : modelRef(o.model) });
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.stderr.write('relp worker: stopping after the shards in hand\n');
          void w.close().then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      process.stderr.write(`relp worker: stopped after ${w.done} shard(s)\n`);
    });
}
