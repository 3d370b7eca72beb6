/**
 * The worker-thread side of a local pool: each thread holds its own tfjs backend and model
 * (loaded on its first shard, kept while the plan's model stays the same) and runs shards.
 */
import { initBackend } from '../backend.ts';
import type { LoadedModel } from '../hooks/load-model.ts';
import { loadModelRef } from './model-source.ts';
import { releaseShardSetup, runShard, type ShardResult } from './run-shard.ts';
import type { SweepPlan } from './plan.ts';
import { testHooks } from './test-hooks.ts';

/** One task sent to a thread. */
export interface ShardTask {
  plan: SweepPlan;
  key: string;
  planHash: string;
  /** Load this model reference instead of the plan's (a worker's `--model`). */
  modelOverride?: string;
}

let loaded: { ref: string; m: LoadedModel } | undefined;

/** Run one shard in this thread. */
export default async function runShardTask(task: ShardTask): Promise<ShardResult> {
  await initBackend();
  const ref = task.modelOverride ?? task.plan.model.ref;
  if (!loaded || loaded.ref !== ref) {
    releaseShardSetup();
    loaded?.m.model.dispose();
    loaded = { ref, m: await loadModelRef(ref) };
  }
  testHooks(task.key);
  return runShard(loaded.m.model, task.plan, task.key, task.planHash);
}
