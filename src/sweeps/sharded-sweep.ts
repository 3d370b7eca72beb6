/**
 * A patching sweep run as shards: in this thread (workers = 1), on N local threads, or on a BullMQ
 * queue served by `relp worker` processes on any machine. This is the one sweep path: `relp patch`,
 * `relp demo` and the library's `runSweep` all come here, every way writes the same run.json (the
 * one writer, {@link runShardedSweep}), and every way resumes from OUT/progress.json (the shards done).
 */
import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import type { LoadedModel } from '../hooks/load-model.ts';
import type { PromptPair } from '../tasks/types.ts';
import { parseComponents } from '../patching/components.ts';
import { runFileOf, runPairs, writeRunFile, type RunFile } from '../contracts/run.ts';
import { makeProvenance, type HashableModel, type Provenance } from '../contracts/provenance.ts';
import { prepareRunFolder } from '../contracts/run-folder.ts';
import { SWEEP_DEFAULTS, type SweepMethod } from '../patching/names.ts';
import type { ComponentName } from '../patching/components.ts';
import type { Direction } from '../patching/activation-patching.ts';
import { rulesName, type Rules } from '../rules/rules.ts';
import type { DatasetRecord } from '../tasks/dataset.ts';
import { silentProgress, type Progress } from '../patching/progress.ts';
import { resolveMetric, METRICS } from '../patching/metrics.ts';
import { toPatchingData } from '../patching/data.ts';
import { planHash, planShards, shardWork, GRAD_METHODS, type EdgeGradMethod, type GradMethod, type SweepPlan } from './plan.ts';
import { ShardStore } from './shard-store.ts';
import { mergeShards, checkShardResult, type MergedRun } from './merge.ts';
import { runLocal } from './local-pool.ts';
import { runQueued } from './coordinator.ts';
import { capWorkers } from './worker-memory.ts';
import type { ShardResult } from './run-shard.ts';

/** What a patching sweep computes and where it writes; unset fields take {@link SWEEP_DEFAULTS}. */
export interface SweepOptions {
  /** Default `SWEEP_DEFAULTS.methods` (activation, atp, relp). */
  methods?: SweepMethod[];
  /** Names or a comma list; default `SWEEP_DEFAULTS.components` (resid_pre, attn_out, mlp_out, z). */
  components?: ComponentName[] | string;
  /** LRP rules of `relp`: a preset name or a rule set (default the `relp` preset); run.json records its name ({@link rulesName}). */
  rules?: Rules;
  /** Default `denoising` (clean patched into corrupt). */
  direction?: Direction;
  /** CLI metric name (default `normalised-logit-diff`). */
  metric?: string;
  /** Sequences per forward in activation patching. */
  batch?: number;
  /** Output folder: run.json, and progress.json (the shards done) while the sweep runs. */
  out?: string;
  /** What run.json records about the prompts (default {@link CUSTOM_DATASET}). */
  dataset?: DatasetRecord;
  /** With `out`: start a new run there even if it holds results for other prompts or another model. */
  force?: boolean;
}

/** The dataset record of pairs built in code: no task, seed or file on record (provenance task `custom`). */
export const CUSTOM_DATASET: DatasetRecord = Object.freeze({ kind: 'custom' });

/** The provenance of a sweep on `pairs`: task and seed from its dataset record (a JSONL file's task is the file). */
export function sweepProvenance(pairs: PromptPair[], model: HashableModel, dataset: DatasetRecord = CUSTOM_DATASET): Provenance {
  const task = dataset.kind === 'jsonl' ? { task: dataset.source ?? 'jsonl', seed: null } : { task: dataset.kind, seed: dataset.seed ?? null };
  return makeProvenance(task.task, task.seed, pairs, model);
}

/**
 * Refuse an `out` folder that holds another run (before any compute, so a wrong folder costs
 * nothing), naming what differs.
 */
export function prepareSweepFolder(opts: Pick<SweepOptions, 'out' | 'force' | 'dataset'>, provenance: Provenance, pairs: readonly PromptPair[], modelPath: string): void {
  if (!opts.out) return;
  prepareRunFolder(opts.out, provenance, { force: opts.force, facts: { n: pairs.length, corruption: opts.dataset?.corruption, model: modelPath } });
}

/** How to run shards. */
export interface ShardRunOptions {
  /** Local threads (default: the number of cores, capped by memory). Ignored with `queue`. */
  workers?: number;
  /** redis://HOST:PORT/NAME: run on `relp worker` processes instead. */
  queue?: string;
  /** Run folder: progress.json (shards done) is read and extended here. */
  out?: string;
  /** One bar over all shards (units: cells, prompts × components, edges). */
  progress?: Progress;
  log?: (msg: string) => void;
  /** Redis outage tolerated by the coordinator (seconds). */
  redisTimeoutS?: number;
}

/** Shard sizes of a sweep plan. */
export interface ShardSizes {
  /** Layers per activation-patching shard (default 1). */
  layersPerShard?: number;
  /** Prompts per gradient shard (default 8). */
  promptsPerShard?: number;
  /** Edges per exact-edge shard (default 64). */
  edgesPerShard?: number;
}

/** The default number of local workers: one per core. */
export function defaultWorkers(): number {
  return availableParallelism();
}

function metricName(m: string | undefined): string {
  if (m === undefined) return SWEEP_DEFAULTS.metric;
  resolveMetric(m);
  return m;
}

/** Build a plan (model reference `ref`: see model-source.ts). */
export function buildPlan(
  loaded: LoadedModel,
  ref: string,
  pairs: PromptPair[],
  opts: { methods?: SweepOptions['methods']; components?: SweepOptions['components']; edges?: boolean; edgeRange?: [number, number]; edgeGrad?: EdgeGradMethod[]; igSteps?: number; rules?: Rules; gqa?: SweepPlan['gqa']; direction?: SweepPlan['direction']; metric?: string; batch?: number; noop?: number; faith?: SweepPlan['faith'] } & ShardSizes,
): SweepPlan {
  toPatchingData(pairs); // one token length, with a clear error otherwise
  const methods = opts.methods ?? [];
  const components = opts.components !== undefined ? parseComponents(opts.components) : [];
  const grad = methods.filter((m): m is GradMethod => (GRAD_METHODS as readonly string[]).includes(m));
  const metric = metricName(opts.metric);
  if (!(metric in METRICS)) throw new Error(`unknown metric "${metric}"`);
  return {
    version: 1,
    model: { ref, hash: loaded.model.weightHash(), config: loaded.model.cfg },
    pairs,
    metric,
    direction: opts.direction ?? SWEEP_DEFAULTS.direction,
    rules: grad.includes('relp') || opts.edgeGrad?.includes('eap-relp') ? (opts.rules ?? SWEEP_DEFAULTS.rules) : undefined,
    batch: opts.batch,
    activation: methods.includes('activation') ? { components, layersPerShard: opts.layersPerShard ?? 1 } : undefined,
    gradient: grad.length ? { methods: grad, components, promptsPerShard: opts.promptsPerShard ?? 8 } : undefined,
    edges: opts.edges ? { edgesPerShard: opts.edgesPerShard ?? 64, range: opts.edgeRange } : undefined,
    edgeGrad: opts.edgeGrad?.length
      ? { methods: opts.edgeGrad, promptsPerShard: opts.promptsPerShard ?? 8, igSteps: opts.edgeGrad.includes('eap-ig') ? (opts.igSteps ?? 5) : undefined }
      : undefined,
    faith: opts.faith,
    noop: opts.noop ? { count: opts.noop } : undefined,
    gqa: opts.gqa && opts.gqa !== 'grouped' ? opts.gqa : undefined,
  };
}

/** Statistics of one {@link runPlan}. */
export interface PlanRunStats {
  shards: number;
  /** Shards found done in the store (not recomputed). */
  resumed: number;
  /** Shards computed by this call. */
  computed: number;
  /** Work units (activation cells, prompts × components, edges) of the resumed shards, and of all. */
  resumedWork: number;
  totalWork: number;
  workers: number;
  wallSeconds: number;
}

/**
 * Run every missing shard of `plan` and merge. `loaded` is the coordinator's model (used in-thread
 * with workers = 1, and for the memory cap).
 */
export async function runPlan(plan: SweepPlan, loaded: LoadedModel | undefined, opts: ShardRunOptions = {}): Promise<MergedRun & { stats: PlanRunStats }> {
  const t0 = performance.now();
  const log = opts.log ?? ((m: string) => process.stderr.write(`relp: ${m}\n`));
  const hash = planHash(plan);
  const keys = planShards(plan);
  const store = ShardStore.forRun(opts.out, hash);
  // A stored shard is re-checked too (a hand-edited or foreign progress.json must not leak in).
  for (const k of Object.keys(store.done)) if (checkShardResult(plan, hash, k, store.done[k])) delete store.done[k];
  const todo = keys.filter((k) => !store.has(k));
  const progress = opts.progress ?? silentProgress;
  const total = keys.reduce((n, k) => n + shardWork(plan, k), 0);
  let workers = 0;
  const onResult = (r: ShardResult) => {
    const err = checkShardResult(plan, hash, r.key, r);
    if (err) throw new Error(`refused a result: ${err}`);
    store.add(r);
    progress.increment(shardWork(plan, r.key));
  };
  if (todo.length < keys.length) log(`resuming: ${keys.length - todo.length} of ${keys.length} shards already done`);
  progress.start(total, opts.queue ? 'shards (queue)' : 'shards');
  progress.increment(total - todo.reduce((n, k) => n + shardWork(plan, k), 0));
  try {
    if (todo.length > 0) {
      if (opts.queue) {
        log(`${todo.length} shards on ${opts.queue.replace(/\/\/[^@/]*@/, '//')}; waiting for relp worker processes`);
        await runQueued(plan, hash, todo, { url: opts.queue, onResult, log, redisTimeoutS: opts.redisTimeoutS });
      } else {
        const pos = plan.pairs[0].cleanIds.length;
        // A streamed model runs in-process by default: each thread would hold its own block and
        // read buffers, and the weights' reading, not the matmuls, dominates a streamed sweep.
        const streamed = loaded?.model.execution === 'streamed';
        if (streamed && opts.workers === undefined) log('streamed weights: 1 worker (give --workers N to run N threads, each streaming its own blocks)');
        const cap = capWorkers(opts.workers ?? (streamed ? 1 : defaultWorkers()), plan.model.config, pos, plan.batch, undefined, streamed);
        if (cap.note) log(cap.note);
        workers = Math.min(cap.workers, todo.length);
        await runLocal(plan, hash, todo, { workers, model: loaded?.model, onResult, log });
      }
    }
  } finally {
    progress.stop();
  }
  const merged = mergeShards(plan, store.done);
  const todoWork = todo.reduce((n, k) => n + shardWork(plan, k), 0);
  return { ...merged, stats: { shards: keys.length, resumed: keys.length - todo.length, computed: todo.length, resumedWork: total - todoWork, totalWork: total, workers, wallSeconds: (performance.now() - t0) / 1000 } };
}

/** The run file of a merged plan: what {@link runShardedSweep} writes to OUT/run.json. */
export function planRunFile(plan: SweepPlan, loaded: LoadedModel, merged: MergedRun, dataset: DatasetRecord = CUSTOM_DATASET, provenance: Provenance = sweepProvenance(plan.pairs, loaded.model, dataset)): RunFile {
  const metric = resolveMetric(plan.metric);
  const first = plan.pairs[0].cleanIds;
  const grad = plan.gradient?.methods ?? [];
  return runFileOf({
    provenance,
    model: { path: loaded.path, config: loaded.hfConfig, sha256: loaded.sha256 },
    dataset: { ...dataset, pairs: runPairs(plan.pairs) },
    metric: { name: metric.name, clean: merged.baselines.clean, corrupt: merged.baselines.corrupt, direction: plan.direction },
    scores: merged.scores,
    labels: loaded.tokenizer ? loaded.tokenizer.toStrTokens(first) : first.map(String),
    rules: grad.includes('relp') && plan.rules !== undefined ? rulesName(plan.rules) : undefined,
    timings: merged.seconds,
    backend: tf.getBackend(),
  });
}

/**
 * A patching sweep (`relp patch`, `relp demo`, `runSweep`): build the plan (unset methods and
 * components from {@link SWEEP_DEFAULTS}), run its shards, and with `out` write OUT/run.json.
 * `ref` is where threads and queue workers find the model (see model-source.ts).
 */
export async function runShardedSweep(
  loaded: LoadedModel,
  ref: string,
  pairs: PromptPair[],
  opts: SweepOptions & ShardSizes & ShardRunOptions = {},
): Promise<{ run: RunFile; stats: PlanRunStats }> {
  const plan = buildPlan(loaded, ref, pairs, { ...opts, methods: opts.methods ?? [...SWEEP_DEFAULTS.methods], components: opts.components ?? [...SWEEP_DEFAULTS.components] });
  const provenance = sweepProvenance(pairs, loaded.model, opts.dataset);
  prepareSweepFolder(opts, provenance, pairs, loaded.path);
  const r = await runPlan(plan, loaded, opts);
  const run = planRunFile(plan, loaded, r, opts.dataset, provenance);
  if (opts.out) writeRunFile(opts.out, run);
  return { run, stats: r.stats };
}
