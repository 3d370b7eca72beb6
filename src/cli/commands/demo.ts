/**
 * `relp demo` (what `npm start` runs): IOI on the embedded model, activation patching vs AtP vs
 * RelP over resid_pre, attn_out, mlp_out and per-head z, the correlation table, the top heads,
 * a run file, and the viewer.
 */
import { Option, type Command } from 'commander';
import { resolve, dirname, basename } from 'node:path';
import { barProgress } from '../../patching/progress.ts';
import { runSweep } from '../../patching/sweep.ts';
import { correlationTable, formatCorrelationTable } from '../../patching/correlation.ts';
import { ioiSameLength } from '../../tasks/dataset.ts';
import type { RunFile } from '../../patching/run-file.ts';
import { addTokenizerOptions, checkUnknownPairs, cliTokenizer, integer, positiveInt, printJson, setup, addExecutionOptions, type ExecutionCliOptions, type TokenizerCliOptions } from '../shared.ts';
import { num } from '../output.ts';

/** The top heads of a run's `activation` z grid, by |score|. */
export function topHeads(run: RunFile, k = 10): { head: string; score: number }[] {
  const z = run.scores.activation?.z;
  if (!z) return [];
  const out: { head: string; score: number }[] = [];
  (z.values as number[][]).forEach((row, l) => row.forEach((v, h) => out.push({ head: `${l}.${h}`, score: v })));
  return out.sort((a, b) => Math.abs(b.score) - Math.abs(a.score)).slice(0, k);
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace(/Z$/, '');
}

export function register(program: Command): void {
  const cmd = program
    .command('demo')
    .description('The main job: IOI on the embedded model, activation patching vs AtP vs RelP, correlation table, top heads, run file, viewer.')
    .option('--model <dir>', 'HF-layout model folder (default: the embedded IOI model)')
    .option('--n <n>', 'IOI prompt pairs', positiveInt, 64)
    .option('--seed <s>', 'seed', integer, 0)
    .addOption(new Option('--corruption <kind>', 'IOI corruption: swap the names so the answer flips (the RelP paper\'s demo), or abc (a third name)').choices(['swap', 'abc']).default('swap'))
    .option('--out <dir>', 'run folder (default runs/demo-<timestamp>)')
    .option('--no-serve', 'stop after the run is written')
    .option('--port <p>', 'viewer port', integer, 7878)
    .option('--host <h>', 'viewer host', '127.0.0.1')
    .option('--force', 'start a new run in --out even if it holds results for other prompts or another model', false)
    .option('--json', 'print one JSON object (with --no-serve) instead of the summary', false);
  addExecutionOptions(addTokenizerOptions(cmd))
    .action(async (o: TokenizerCliOptions & ExecutionCliOptions & { model?: string; n: number; seed: number; corruption: 'swap' | 'abc'; out?: string; serve: boolean; port: number; host: string; force: boolean; json: boolean }) => {
      const t0 = performance.now();
      const out = resolve(o.out ?? `runs/demo-${stamp()}`);
      const loaded = await setup(o.model, o);
      const pairs = ioiSameLength(cliTokenizer(loaded.tokenizer, o), o.n, o.seed, o.corruption);
      checkUnknownPairs(loaded.tokenizer, pairs, o.strict);
      process.stderr.write(`relp: ${pairs.length} IOI pairs (${o.corruption === 'swap' ? 'swapped names' : 'ABC'} corruption), e.g. ${JSON.stringify(pairs[0].clean)} → ${JSON.stringify(pairs[0].answer)}\n`);
      const run = await runSweep(loaded, pairs, {
        methods: ['activation', 'atp', 'relp'],
        components: 'resid_pre,attn_out,mlp_out,z',
        rules: 'relp',
        out,
        progress: barProgress,
        dataset: { kind: 'ioi', seed: o.seed, corruption: o.corruption },
        force: o.force,
      });
      loaded.model.dispose();
      const table = correlationTable(run.scores, { metric: run.metric });
      if (o.json) {
        printJson({ run: `${out}/run.json`, provenance: run.provenance, metric: run.metric, correlations: table, top_heads: topHeads(run), timings: run.timings });
        if (!o.serve) return;
      }
      const say = (s: string) => process.stdout.write(s + '\n');
      if (!o.json) {
        say(`\nlogit difference: clean ${num(run.metric.clean)}, corrupt ${num(run.metric.corrupt)} (normalised: clean = 1, corrupt = 0)`);
        say('\n' + formatCorrelationTable(table, 'Correlation with activation patching, Pearson r (Spearman ρ); RelP rules: relp (LN + Identity + Half)'));
        say('\nTop heads by activation patching (z, normalised logit difference recovered):');
        for (const { head, score } of topHeads(run)) say(`  head ${head.padEnd(6)} ${score.toFixed(3).padStart(7)}`);
        say(`\ntimings: ${Object.entries(run.timings).map(([m, s]) => `${m} ${s.toFixed(2)} s`).join(', ')}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        say(`run written to ${out}/run.json`);
      }
      if (!o.serve) return;
      const { startViewer } = await import('../../viz/server.ts');
      const viewer = await startViewer({ runsDir: dirname(out), port: o.port, host: o.host });
      say(`viewer: ${viewer.url}runs/${encodeURIComponent(basename(out))}  (Ctrl-C to stop)`);
    });
}
