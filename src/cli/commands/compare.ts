/** `relp compare`: method-vs-activation correlation tables of a run, and its circuit methods. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { correlationTable, correlationTitle, correlationWarning, formatCorrelationTable } from '../../patching/correlation.ts';
import { readRunFile } from '../../contracts/run.ts';
import { readFaithfulnessFile } from '../../contracts/faithfulness.ts';
import { printJson } from '../shared.ts';
import { num } from '../output.ts';

export function register(program: Command): void {
  program
    .command('compare')
    .description("Pearson and Spearman correlation of every method with activation patching, per component (RelP paper's Table 1 layout).")
    .argument('<dir>', 'run folder (holding run.json)')
    .option('--json', 'print one JSON object', false)
    .action((dir: string, o: { json: boolean }) => {
      // Both files go through the contracts' readers: a corrupt or unknown-version file is refused
      // with the file, the field and the problem named.
      const run = readRunFile(dir);
      const table = correlationTable(run.scores, { metric: run.metric });
      const faithPath = join(dir, 'faithfulness.json');
      const faith = existsSync(faithPath) ? readFaithfulnessFile(faithPath) : undefined;
      // One line on stderr, so neither the table nor --json output hides a missing correlation.
      const warning = correlationWarning(table);
      if (warning) process.stderr.write(`relp: warning: ${warning}\n`);
      if (o.json) return printJson({ rules: run.rules ?? null, metric: run.metric, provenance: run.provenance, correlations: table, circuits: faith?.curves ?? null });
      process.stdout.write(formatCorrelationTable(table, `${dir}: ${correlationTitle(run.rules)}`) + '\n');
      if (faith) {
        process.stdout.write('\ncircuit methods (faithfulness AUC):\n');
        for (const f of faith.curves) process.stdout.write(`  ${f.method.padEnd(10)} auc ${num(f.auc)}  (m(full) ${num(f.full)}, m(empty) ${num(f.empty)})\n`);
      }
    });
}
