/** `relp patch`: activation / attribution / relevance patching sweeps, written to a run file. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { barProgress } from '../../patching/progress.ts';
import { SWEEP_DEFAULTS, SWEEP_METHODS, type SweepMethod } from '../../sweeps/run-sweep.ts';
import { runShardedSweep } from '../../sweeps/sharded-sweep.ts';
import { modelDir, modelRef } from '../../sweeps/model-source.ts';
import { correlationTable, correlationTitle, correlationWarning, formatCorrelationTable } from '../../patching/correlation.ts';
import { RULE_PRESETS, type RulePresetName } from '../../rules/rules.ts';
import { datasetRecord, loadDataset } from '../../tasks/dataset.ts';
import type { Direction } from '../../patching/activation-patching.ts';
import { parseComponents } from '../../patching/components.ts';
import { addDatasetOptions, addTokenizerOptions, checkUnknownPairs, cliTokenizer, datasetSpec, positiveInt, printJson, setup, addExecutionOptions, reportStreaming, type ExecutionCliOptions, type DatasetCliOptions, type TokenizerCliOptions } from '../shared.ts';
import { num } from '../output.ts';

/** `--methods`: a comma list of sweep methods (comma strings are parsed in the CLI only). */
function parseMethods(s: string): SweepMethod[] {
  const out = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const m of out) if (!(SWEEP_METHODS as readonly string[]).includes(m)) throw new Error(`unknown method "${m}" (use: ${SWEEP_METHODS.join(', ')})`);
  if (out.length === 0) throw new Error('no methods given');
  return out as SweepMethod[];
}

export function register(program: Command): void {
  const cmd = program
    .command('patch')
    .description('Run activation patching, AtP, AtP* and RelP over the same components and write DIR/run.json.')
    .option('--model <dir>', 'HF-layout model folder (default: the embedded IOI model)');
  addExecutionOptions(addTokenizerOptions(addDatasetOptions(cmd)))
    // Defaults shared with `relp demo` (SWEEP_DEFAULTS), so `relp patch --task ioi` prints the demo's table.
    .option('--methods <list>', `comma list of ${SWEEP_METHODS.join(', ')}`, SWEEP_DEFAULTS.methods.join(','))
    .option('--components <list>', 'comma list: resid_pre, resid_mid, resid_post, attn_out, mlp_out, z, z_pos, q, k, v, pattern; every = all of them; every_block = resid_pre,attn_out,mlp_out', SWEEP_DEFAULTS.components.join(','))
    .addOption(new Option('--rules <preset>', 'LRP rule preset for relp').choices(Object.keys(RULE_PRESETS)).default(SWEEP_DEFAULTS.rules))
    .addOption(new Option('--direction <d>', 'denoising patches clean into corrupt').choices(['denoising', 'noising']).default(SWEEP_DEFAULTS.direction))
    .addOption(new Option('--metric <m>', 'metric').choices(['normalised-logit-diff', 'logit-diff', 'prob-diff', 'kl']).default(SWEEP_DEFAULTS.metric))
    .option('--batch <b>', 'sequences per forward in activation patching (patches × prompts)', positiveInt)
    .requiredOption('--out <dir>', 'output folder (resumes from its progress.json: the shards done)')
    .option('--workers <n>', 'worker threads, each with its own model (default: the number of cores, capped by memory)', positiveInt)
    .option('--queue <url>', 'run the shards on `relp worker` processes through BullMQ: redis://HOST:PORT/NAME')
    .option('--shard-layers <n>', 'layers per activation-patching shard', positiveInt, 1)
    .option('--shard-prompts <n>', 'prompt pairs per AtP/AtP*/RelP shard', positiveInt, 8)
    .option('--force', 'start a new run in --out even if it holds results for other prompts or another model', false)
    .option('--json', 'print one JSON object instead of the summary', false)
    .action(async (o: DatasetCliOptions & TokenizerCliOptions & ExecutionCliOptions & { model?: string; methods: string; components: string; rules: RulePresetName; direction: Direction; metric: string; batch?: number; out: string; workers?: number; queue?: string; shardLayers: number; shardPrompts: number; force: boolean; json: boolean }) => {
      const methods = parseMethods(o.methods);
      const components = parseComponents(o.components);
      if (o.queue && o.workers !== undefined) throw new Error('give either --workers (local threads) or --queue (relp worker processes), not both');
      const spec = datasetSpec(o);
      const ref = modelRef(o.model);
      // An HF id that is not a folder here is downloaded (workers do the same).
      const loaded = await setup(ref === 'embedded' ? undefined : await modelDir(ref), o);
      const pairs = loadDataset(cliTokenizer(loaded.tokenizer, o), spec);
      checkUnknownPairs(loaded.tokenizer, pairs, o.strict);
      // Say what a group name expanded to: `every` must not look like the default.
      process.stderr.write(`relp: components ${components.join(', ')}\n`);
      const { run, stats } = await runShardedSweep(loaded, ref, pairs, {
        methods,
        components,
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
        dataset: datasetRecord(spec),
        force: o.force,
      });
      reportStreaming(loaded);
      loaded.model.dispose();
      const path = `${o.out}/run.json`;
      const table = run.scores.activation && Object.keys(run.scores).length > 1 ? correlationTable(run.scores, { metric: run.metric }) : null;
      const warning = table && correlationWarning(table);
      if (warning) process.stderr.write(`relp: warning: ${warning}\n`);
      if (o.json) {
        const resumed = { shards: stats.resumed, of: stats.shards, units: stats.resumedWork, totalUnits: stats.totalWork };
        return printJson({ run: path, provenance: run.provenance, pairs: pairs.length, components, metric: run.metric, resumed, timings: run.timings, correlations: table });
      }
      const say = (s: string) => process.stdout.write(s + '\n');
      if (stats.resumed > 0) {
        say(`resumed from ${o.out}/progress.json: reused ${stats.resumed} of ${stats.shards} shards (${stats.resumedWork} of ${stats.totalWork} units: activation cells, prompts × components), computed ${stats.computed}`);
      }
      say(`${pairs.length} pairs (task ${run.provenance.task}${run.provenance.seed === null ? '' : `, seed ${run.provenance.seed}`}), metric ${run.metric.name}: clean ${num(run.metric.clean, 4)}, corrupt ${num(run.metric.corrupt, 4)}`);
      say(`components: ${components.join(', ')}; methods: ${methods.join(', ')}`);
      if (table) say('\n' + formatCorrelationTable(table, correlationTitle(run.rules)) + '\n');
      say(`run written to ${path}`);
    });
}
