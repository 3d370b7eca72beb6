/**
 * The library's patching sweep: {@link runSweep} is the sharded sweep (the one path `relp patch` and
 * `relp demo` take) run in this thread, so a script, the CLI and a notebook get the same numbers
 * and the same run.json.
 */
import type { LoadedModel } from '../hooks/load-model.ts';
import type { PromptPair } from '../tasks/types.ts';
import type { RunFile } from '../contracts/run.ts';
import { runShardedSweep, type PlanRunStats, type ShardRunOptions, type ShardSizes, type SweepOptions } from './sharded-sweep.ts';

export { SWEEP_DEFAULTS, SWEEP_METHODS, type SweepMethod } from '../patching/names.ts';
export { CUSTOM_DATASET, type SweepOptions } from './sharded-sweep.ts';

/**
 * Options of {@link runSweep}: the sweep's ({@link SweepOptions}: methods, components, rules,
 * metric, direction, out, dataset), how to split it, and how to run it (`workers`, default 1: in
 * this thread, no worker threads; `progress`: one bar over all shards; `log`: notes such as a resume).
 */
export interface RunSweepOptions extends SweepOptions, ShardSizes, Pick<ShardRunOptions, 'workers' | 'progress' | 'log'> {}

/** A sweep's run file (what `out/run.json` holds), plus how its shards ran (how many were resumed). */
export interface SweepResult extends RunFile {
  stats: PlanRunStats;
}

/**
 * Run a patching sweep on `pairs` and (with `out`) write `out/run.json`, resuming from
 * `out/progress.json`. Unset options take `SWEEP_DEFAULTS`; without a `dataset` record the run is
 * recorded as task `custom` ({@link CUSTOM_DATASET}).
 */
export async function runSweep(loaded: LoadedModel, pairs: PromptPair[], opts: RunSweepOptions = {}): Promise<SweepResult> {
  // Threads, when asked for, load the model from the folder it was loaded from.
  const { run, stats } = await runShardedSweep(loaded, loaded.path, pairs, { ...opts, workers: opts.workers ?? 1 });
  return { ...run, stats };
}
