/** `relp compare`: method-vs-activation correlation tables of a run. */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { correlationTable, formatCorrelationTable } from '../../patching/correlation.ts';
import { readRunFile } from '../../patching/run-file.ts';
import { printJson } from '../shared.ts';

export function register(program: Command): void {
  program
    .command('compare')
    .description("Pearson and Spearman correlation of every method with activation patching, per component (RelP paper's Table 1 layout).")
    .argument('<dir>', 'run folder (holding run.json)')
    .option('--json', 'print one JSON object', false)
    .action((dir: string, o: { json: boolean }) => {
      const run = readRunFile(dir);
      const table = correlationTable(run.scores);
      const faithPath = join(dir, 'faithfulness.json');
      const faith = existsSync(faithPath) ? (JSON.parse(readFileSync(faithPath, 'utf8')) as unknown) : undefined;
      if (o.json) return printJson({ rules: run.rules ?? null, metric: run.metric, correlations: table, circuits: faith ?? null });
      process.stdout.write(formatCorrelationTable(table, `${dir}: correlation with activation patching — Pearson r (Spearman ρ); relp rules: ${run.rules ?? '-'}`) + '\n');
      if (Array.isArray(faith) || (faith && typeof faith === 'object')) {
        const list = (Array.isArray(faith) ? faith : [faith]) as { method: string; auc: number; full: number; empty: number }[];
        process.stdout.write('\ncircuit methods (faithfulness AUC):\n');
        for (const f of list) process.stdout.write(`  ${String(f.method).padEnd(10)} auc ${Number(f.auc).toFixed(3)}  (m(full) ${Number(f.full).toFixed(3)}, m(empty) ${Number(f.empty).toFixed(3)})\n`);
      }
    });
}
