/**
 * `relp demo` (what `npm start` runs): IOI on the embedded model, activation patching vs AtP vs
 * RelP over resid_pre, attn_out, mlp_out and per-head z, the correlation table, the top heads,
 * a run file, and the viewer.
 */
import type { Command } from 'commander';
import { resolve, dirname, basename } from 'node:path';
import { barProgress } from '../../patching/progress.ts';
import { runShardedSweep } from '../../sweeps/sharded-sweep.ts';
import { modelRef } from '../../sweeps/model-source.ts';
import { correlationTable, correlationTitle, formatCorrelationTable } from '../../patching/correlation.ts';
import { datasetRecord, loadDataset } from '../../tasks/dataset.ts';
import type { IoiCorruption } from '../../tasks/ioi.ts';
import type { RunFile } from '../../contracts/run.ts';
import { addIoiOptions, addTokenizerOptions, checkUnknownPairs, cliTokenizer, integer, printJson, setup, addExecutionOptions, type ExecutionCliOptions, type TokenizerCliOptions } from '../shared.ts';
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
    .option('--model <dir>', 'HF-layout model folder (default: the embedded IOI model)');
  // The same IOI options and defaults as `relp patch` and `relp circuit`.
  addIoiOptions(cmd)
    .option('--out <dir>', 'run folder (default runs/demo-<timestamp>)')
    .option('--no-serve', 'stop after the run is written')
    .option('--port <p>', 'viewer port', integer, 7878)
    .option('--host <h>', 'viewer host', '127.0.0.1')
    .option('--force', 'start a new run in --out even if it holds results for other prompts or another model', false)
    .option('--json', 'print one JSON object (with --no-serve) instead of the summary', false);
  addExecutionOptions(addTokenizerOptions(cmd))
    .action(async (o: TokenizerCliOptions & ExecutionCliOptions & { model?: string; n: number; seed: number; corruption: IoiCorruption; out?: string; serve: boolean; port: number; host: string; force: boolean; json: boolean }) => {
      const t0 = performance.now();
      const out = resolve(o.out ?? `runs/demo-${stamp()}`);
      const loaded = await setup(o.model, o);
      const spec = { kind: 'ioi', n: o.n, seed: o.seed, corruption: o.corruption } as const;
      const pairs = loadDataset(cliTokenizer(loaded.tokenizer, o), spec);
      checkUnknownPairs(loaded.tokenizer, pairs, o.strict);
      process.stderr.write(`relp: ${pairs.length} IOI pairs (${o.corruption === 'swap' ? 'swapped names' : 'ABC'} corruption), e.g. ${JSON.stringify(pairs[0].clean)} → ${JSON.stringify(pairs[0].answer)}\n`);
      // `relp patch --task ioi`'s sweep: the same path and the same defaults (SWEEP_DEFAULTS), so the same table.
      const { run, stats } = await runShardedSweep(loaded, modelRef(o.model), pairs, {
        out,
        progress: barProgress(),
        dataset: datasetRecord(spec),
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
        say('\n' + formatCorrelationTable(table, correlationTitle(run.rules)));
        say('\nTop heads by activation patching (z, normalised logit difference recovered):');
        for (const { head, score } of topHeads(run)) say(`  head ${head.padEnd(6)} ${score.toFixed(3).padStart(7)}`);
        // run.timings add up every shard's seconds, on however many threads: not wall time.
        const perMethod = Object.entries(run.timings).map(([m, s]) => `${m} ${s.toFixed(2)} s`).join(', ');
        const threads = `${stats.workers} ${stats.workers === 1 ? 'thread' : 'threads'}${stats.resumed > 0 ? `; ${stats.resumed} of ${stats.shards} shards resumed from progress.json` : ''}`;
        say(`\ncompute time summed over shards (${threads}): ${perMethod}; wall time ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        say(`run written to ${out}/run.json`);
      }
      if (!o.serve) return;
      const { startViewer } = await import('../../viz/server.ts');
      const viewer = await startViewer({ runsDir: dirname(out), port: o.port, host: o.host });
      say(`viewer: ${viewer.url}runs/${encodeURIComponent(basename(out))}  (Ctrl-C to stop)`);
    });
}
