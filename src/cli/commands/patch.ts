/** `relp patch`: activation / attribution / relevance patching sweeps, written to a run file. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { barProgress } from '../../patching/progress.ts';
import { parseMethods, runSweep } from '../../patching/sweep.ts';
import { correlationTable, formatCorrelationTable } from '../../patching/correlation.ts';
import { RULE_PRESETS, type RulePresetName } from '../../relp/rules.ts';
import { datasetRecord, loadDataset } from '../../tasks/dataset.ts';
import type { Direction } from '../../patching/activation-patching.ts';
import { parseComponents } from '../../patching/components.ts';
import { addDatasetOptions, datasetSpec, positiveInt, printJson, setup, type DatasetCliOptions } from '../shared.ts';
import { num } from '../output.ts';

export function register(program: Command): void {
  const cmd = program
    .command('patch')
    .description('Run activation patching, AtP, AtP* and RelP over the same components and write DIR/run.json.')
    .option('--model <dir>', 'HF-layout GPT-2 folder (default: the embedded IOI model)');
  addDatasetOptions(cmd)
    .option('--methods <list>', 'comma list of activation, atp, atp*, relp', 'activation,atp,relp')
    .option('--components <list>', 'comma list: resid_pre, resid_mid, resid_post, attn_out, mlp_out, z, z_pos, q, k, v, pattern; every = all of them; every_block = resid_pre,attn_out,mlp_out', 'resid_pre,attn_out,mlp_out')
    .addOption(new Option('--rules <preset>', 'LRP rule preset for relp').choices(Object.keys(RULE_PRESETS)).default('relp'))
    .addOption(new Option('--direction <d>', 'denoising patches clean into corrupt').choices(['denoising', 'noising']).default('denoising'))
    .addOption(new Option('--metric <m>', 'metric').choices(['normalised-logit-diff', 'logit-diff', 'prob-diff', 'kl']).default('normalised-logit-diff'))
    .option('--batch <b>', 'sequences per forward in activation patching (patches × prompts)', positiveInt)
    .requiredOption('--out <dir>', 'output folder (resumes from its progress.json)')
    .option('--force', 'start a new run in --out even if it holds results for other prompts or another model', false)
    .option('--json', 'print one JSON object instead of the summary', false)
    .action(async (o: DatasetCliOptions & { model?: string; methods: string; components: string; rules: RulePresetName; direction: Direction; metric: string; batch?: number; out: string; force: boolean; json: boolean }) => {
      const methods = parseMethods(o.methods);
      const components = parseComponents(o.components);
      const spec = datasetSpec(o);
      const loaded = await setup(o.model);
      const pairs = loadDataset(loaded.tokenizer, spec);
      // Say what a group name expanded to: `every` must not look like the default.
      process.stderr.write(`relp: components ${components.join(', ')}\n`);
      const run = await runSweep(loaded, pairs, {
        methods,
        components,
        force: o.force,
        rules: o.rules,
        direction: o.direction,
        metric: o.metric,
        batch: o.batch,
        out: o.out,
        progress: barProgress,
        dataset: datasetRecord(spec),
      });
      loaded.model.dispose();
      const path = `${o.out}/run.json`;
      const table = run.scores.activation && Object.keys(run.scores).length > 1 ? correlationTable(run.scores) : null;
      if (o.json) {
        return printJson({ run: path, provenance: run.provenance, pairs: pairs.length, components, metric: run.metric, resumed: run.resumed, timings: run.timings, correlations: table });
      }
      const say = (s: string) => process.stdout.write(s + '\n');
      if (run.resumed && run.resumed.cells > 0) say(`resumed from ${o.out}/progress.json: reused ${run.resumed.cells} of ${run.resumed.total} activation-patching cells, computed ${run.resumed.total - run.resumed.cells}`);
      say(`${pairs.length} pairs (task ${run.provenance.task}${run.provenance.seed === null ? '' : `, seed ${run.provenance.seed}`}), metric ${run.metric.name}: clean ${num(run.metric.clean, 4)}, corrupt ${num(run.metric.corrupt, 4)}`);
      say(`components: ${components.join(', ')}; methods: ${methods.join(', ')}`);
      if (table) say('\n' + formatCorrelationTable(table, `correlation with activation patching (relp rules: ${run.rules ?? '-'})`) + '\n');
      say(`run written to ${path}`);
    });
}
