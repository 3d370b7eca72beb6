/** `relp patch`: activation / attribution / relevance patching sweeps, written to a run file. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { barProgress } from '../../patching/progress.ts';
import { parseMethods } from '../../patching/sweep.ts';
import { runShardedSweep } from '../../sweeps/sharded-sweep.ts';
import { modelDir, modelRef } from '../../sweeps/model-source.ts';
import { correlationTable, formatCorrelationTable } from '../../patching/correlation.ts';
import { RULE_PRESETS, type RulePresetName } from '../../rules/rules.ts';
import { loadDataset, type DatasetSpec } from '../../tasks/dataset.ts';
import type { IoiCorruption } from '../../tasks/ioi.ts';
import type { Direction } from '../../patching/activation-patching.ts';
import { addTokenizerOptions, checkUnknownPairs, cliTokenizer, integer, positiveInt, setup, type TokenizerCliOptions } from '../shared.ts';

/** Options shared by commands that take a dataset. */
export interface DatasetCliOptions {
  task?: string;
  dataset?: string;
  n: number;
  seed: number;
  corruption: IoiCorruption;
}

/** Add --task/--dataset/--n/--seed/--corruption to a command. */
export function addDatasetOptions(cmd: Command, defaultN = 32): Command {
  return cmd
    .addOption(new Option('--task <task>', 'built-in task').choices(['ioi']))
    .option('--dataset <file.jsonl>', 'JSONL dataset: one {"clean","corrupt","answer","wrong"} per line')
    .option('--n <n>', 'number of IOI prompt pairs', positiveInt, defaultN)
    .option('--seed <s>', 'seed of the IOI generator', integer, 0)
    .addOption(new Option('--corruption <kind>', 'IOI corruption').choices(['abc', 'swap']).default('abc'));
}

/** Resolve --task / --dataset into a dataset spec (IOI by default). */
export function datasetSpec(o: DatasetCliOptions): DatasetSpec {
  if (o.task && o.dataset) throw new Error('give either --task or --dataset, not both');
  if (o.dataset) return { kind: 'jsonl', path: o.dataset };
  return { kind: 'ioi', n: o.n, seed: o.seed, corruption: o.corruption };
}

export function register(program: Command): void {
  const cmd = program
    .command('patch')
    .description('Run activation patching, AtP, AtP* and RelP over the same components and write DIR/run.json.')
    .option('--model <dir>', 'HF-layout model folder (default: the embedded IOI model)');
  addTokenizerOptions(addDatasetOptions(cmd))
    .option('--methods <list>', 'comma list of activation, atp, atp*, relp', 'activation,atp,relp')
    .option('--components <list>', 'comma list: resid_pre, resid_mid, resid_post, attn_out, mlp_out, z, z_pos, q, k, v, pattern, every', 'resid_pre,attn_out,mlp_out')
    .addOption(new Option('--rules <preset>', 'LRP rule preset for relp').choices(Object.keys(RULE_PRESETS)).default('relp'))
    .addOption(new Option('--direction <d>', 'denoising patches clean into corrupt').choices(['denoising', 'noising']).default('denoising'))
    .addOption(new Option('--metric <m>', 'metric').choices(['normalised-logit-diff', 'logit-diff', 'prob-diff', 'kl']).default('normalised-logit-diff'))
    .option('--batch <b>', 'sequences per forward in activation patching (patches × prompts)', positiveInt)
    .requiredOption('--out <dir>', 'output folder (resumes from its progress.json: the shards done)')
    .option('--workers <n>', 'worker threads, each with its own model (default: the number of cores, capped by memory)', positiveInt)
    .option('--queue <url>', 'run the shards on `relp worker` processes through BullMQ: redis://HOST:PORT/NAME')
    .option('--shard-layers <n>', 'layers per activation-patching shard', positiveInt, 1)
    .option('--shard-prompts <n>', 'prompt pairs per AtP/AtP*/RelP shard', positiveInt, 8)
    .action(async (o: DatasetCliOptions & TokenizerCliOptions & { model?: string; methods: string; components: string; rules: RulePresetName; direction: Direction; metric: string; batch?: number; out: string; workers?: number; queue?: string; shardLayers: number; shardPrompts: number }) => {
      const methods = parseMethods(o.methods);
      if (o.queue && o.workers !== undefined) throw new Error('give either --workers (local threads) or --queue (relp worker processes), not both');
      const ref = modelRef(o.model);
      // An HF id that is not a folder here is downloaded (workers do the same).
      const loaded = await setup(ref === 'embedded' ? undefined : await modelDir(ref));
      const spec = datasetSpec(o);
      const pairs = loadDataset(cliTokenizer(loaded.tokenizer, o), spec);
      checkUnknownPairs(loaded.tokenizer, pairs, o.strict);
      const { run } = await runShardedSweep(loaded, ref, pairs, {
        methods,
        components: o.components,
        rules: o.rules,
        direction: o.direction,
        metric: o.metric,
        batch: o.batch,
        out: o.out,
        progress: barProgress(),
        workers: o.workers,
        queue: o.queue,
        layersPerShard: o.shardLayers,
        promptsPerShard: o.shardPrompts,
        dataset: spec.kind === 'ioi' ? { kind: 'ioi', seed: spec.seed, corruption: spec.corruption } : { kind: 'jsonl', source: spec.path },
      });
      loaded.model.dispose();
      process.stderr.write(`relp: ${pairs.length} pairs, metric ${run.metric.name}: clean ${run.metric.clean.toFixed(4)}, corrupt ${run.metric.corrupt.toFixed(4)}\n`);
      if (run.scores.activation && Object.keys(run.scores).length > 1) {
        process.stderr.write(formatCorrelationTable(correlationTable(run.scores), `correlation with activation patching (relp rules: ${run.rules ?? '-'})`) + '\n');
      }
      process.stdout.write(`${o.out}/run.json\n`);
    });
}
