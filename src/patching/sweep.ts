/**
 * One patching sweep over several methods, producing a run file. The CLI (`relp patch`,
 * `relp demo`) and notebooks call this, so they all get the same numbers.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import type { LoadedModel } from '../hooks/load-model.ts';
import type { PromptPair } from '../tasks/types.ts';
import type { RulePresetName } from '../rules/rules.ts';
import { activationPatch, type Direction } from './activation-patching.ts';
import { ATP, ATP_STAR, attributionPatch, relpMethod, type AttributionMethod } from './attribution-patching.ts';
import { parseComponents, type ComponentName } from './components.ts';
import { toPatchingData } from './data.ts';
import { resolveMetric } from './metrics.ts';
import type { Progress } from './progress.ts';
import { runFileOf, runPairs, writeRunFile, type RunFile } from '../contracts/run.ts';
import { makeProvenance, type HashableModel, type Provenance } from '../contracts/provenance.ts';
import { prepareRunFolder } from '../contracts/run-folder.ts';
import type { MethodScores } from './score-grid.ts';

import { SWEEP_METHODS, type SweepMethod } from './names.ts';

export { SWEEP_METHODS, type SweepMethod } from './names.ts';

/** Options of {@link runSweep}. */
export interface SweepOptions {
  methods: SweepMethod[];
  components: ComponentName[] | string;
  rules?: RulePresetName;
  direction?: Direction;
  metric?: string;
  batch?: number;
  /** Output folder: run.json, plus progress.json while activation patching runs. */
  out?: string;
  progress?: () => Progress;
  dataset: { kind: string; seed?: number; corruption?: string; source?: string };
  /** With `out`: start a new run there even if it holds results for other prompts or another model. */
  force?: boolean;
}

/** A sweep's run file, plus what a resumed sweep took from its checkpoint. */
export interface SweepResult extends RunFile {
  /** Activation-patching cells read from `out/progress.json` instead of computed, of `total`. */
  resumed: { cells: number; total: number } | null;
}

/** Parse a comma list of methods. */
export function parseMethods(s: string): SweepMethod[] {
  const out = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const m of out) if (!(SWEEP_METHODS as readonly string[]).includes(m)) throw new Error(`unknown method "${m}" (use: ${SWEEP_METHODS.join(', ')})`);
  if (out.length === 0) throw new Error('no methods given');
  return out as SweepMethod[];
}

/** The provenance of a sweep on `pairs` (task and seed from its dataset record); shared by the sharded sweep. */
export function sweepProvenance(pairs: PromptPair[], model: HashableModel, dataset: SweepOptions['dataset']): Provenance {
  const task = dataset.kind === 'jsonl' ? { task: dataset.source ?? 'jsonl', seed: null } : { task: dataset.kind, seed: dataset.seed ?? null };
  return makeProvenance(task.task, task.seed, pairs, model);
}

/**
 * Refuse an `out` folder that holds another run (before any compute, so a wrong folder costs
 * nothing), naming what differs; shared by the sharded sweep.
 */
export function prepareSweepFolder(opts: Pick<SweepOptions, 'out' | 'force' | 'dataset'>, provenance: Provenance, pairs: readonly PromptPair[], modelPath: string): void {
  if (!opts.out) return;
  prepareRunFolder(opts.out, provenance, { force: opts.force, facts: { n: pairs.length, corruption: opts.dataset.corruption, model: modelPath } });
}

/** Run the sweep and (with `out`) write `out/run.json`. */
export async function runSweep(loaded: LoadedModel, pairs: PromptPair[], opts: SweepOptions): Promise<SweepResult> {
  const { model, tokenizer } = loaded;
  const data = toPatchingData(pairs);
  const components = parseComponents(opts.components);
  const provenance = sweepProvenance(pairs, model, opts.dataset);
  prepareSweepFolder(opts, provenance, pairs, loaded.path);
  const metric = resolveMetric(opts.metric);
  const direction = opts.direction ?? 'denoising';
  const scores: Record<string, MethodScores> = {};
  const timings: Record<string, number> = {};
  let baselines = { clean: NaN, corrupt: NaN };
  let resumed: SweepResult['resumed'] = null;
  if (opts.methods.includes('activation')) {
    const r = await activationPatch(model, data, {
      components,
      metric,
      direction,
      batch: opts.batch,
      progress: opts.progress?.(),
      checkpointPath: opts.out ? join(opts.out, 'progress.json') : undefined,
    });
    scores.activation = r.scores;
    timings.activation = r.seconds;
    baselines = r.baselines;
    resumed = r.reused;
  }
  const grad: AttributionMethod[] = [];
  if (opts.methods.includes('atp')) grad.push(ATP);
  if (opts.methods.includes('atp*')) grad.push(ATP_STAR);
  if (opts.methods.includes('relp')) grad.push(relpMethod(opts.rules ?? 'relp'));
  if (grad.length) {
    const r = attributionPatch(model, data, { components, methods: grad, metric, direction, progress: opts.progress?.() });
    Object.assign(scores, r.scores);
    Object.assign(timings, r.seconds);
    baselines = r.baselines;
  }
  const labels = tokenizer ? tokenizer.toStrTokens(data.clean[0]) : data.clean[0].map(String);
  const run: RunFile = runFileOf({
    provenance,
    model: { path: loaded.path, config: loaded.hfConfig, sha256: loaded.sha256 },
    dataset: { ...opts.dataset, pairs: runPairs(pairs) },
    metric: { name: metric.name, clean: Number.isFinite(baselines.clean) ? baselines.clean : null, corrupt: Number.isFinite(baselines.corrupt) ? baselines.corrupt : null, direction },
    scores,
    labels,
    rules: opts.methods.includes('relp') ? (opts.rules ?? 'relp') : undefined,
    timings,
    backend: tf.getBackend(),
  });
  if (opts.out) writeRunFile(opts.out, run);
  return { ...run, resumed };
}
