/** `relp lrp`: per-token input relevance of the next-token logit (or a logit difference). */
import type { Command } from 'commander';
import { Option } from 'commander';
import { heatLine, inputRelevance } from '../../relp/input-relevance.ts';
import { RULE_PRESETS, type RulePresetName } from '../../rules/rules.ts';
import { addTokenizerOptions, checkUnknownWords, cliTokenizer, printJson, setup, addExecutionOptions, type ExecutionCliOptions, type TokenizerCliOptions } from '../shared.ts';
import { useColor } from '../output.ts';

/** Σ relevance against the output for every preset on one input: what conserves, measured. */
export interface ConservationReport {
  output: number;
  /** preset → Σ relevance and its gap Σ − output (absolute and relative to |output|). */
  presets: Record<string, { total: number; gap: number; relative: number }>;
  /** The preset whose Σ relevance is closest to the output. */
  closest: string;
}

/** Build the report from each preset's Σ relevance (the first key is the preset asked for). */
export function conservationReport(output: number, totals: Record<string, number>): ConservationReport {
  const presets = Object.fromEntries(Object.entries(totals).map(([p, total]) => [p, { total, gap: total - output, relative: (total - output) / Math.max(Math.abs(output), 1e-12) }]));
  const closest = Object.entries(presets).reduce((a, b) => (Math.abs(b[1].gap) < Math.abs(a[1].gap) ? b : a))[0];
  return { output, presets, closest };
}

/** The human lines of a conservation report (the asked-for preset first). */
export function formatConservation(r: ConservationReport, asked: string): string[] {
  const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(0)}%`;
  const mine = r.presets[asked]!;
  const lines = [`conservation (${asked}): Σ relevance − output = ${mine.gap >= 0 ? '+' : '−'}${Math.abs(mine.gap).toFixed(4)} (${pct(mine.relative)} of the output)`];
  const others = Object.entries(r.presets).filter(([p]) => p !== asked);
  if (others.length) lines.push(`  other presets on this input: ${others.map(([p, v]) => `${p} Σ ${v.total.toFixed(4)} (${pct(v.relative)})`).join(', ')}`);
  lines.push(
    r.closest === asked
      ? `  ${asked} is the closest to conserving relevance on this input`
      : `  ${asked} does not conserve relevance here; --rules ${r.closest} comes closest (biases also take a share, so no preset is exact)`,
  );
  return lines;
}

export function register(program: Command): void {
  const cmd = program
    .command('lrp')
    .description('LRP explanation: relevance of each input token for the next-token logit (or a logit difference), as a heat line or JSON.')
    .option('--model <dir>', 'HF-layout model folder (default: the embedded IOI model)')
    .requiredOption('--text <text>', 'input text')
    .option('--target <token>', 'token to explain (text of one token, e.g. " Mary"); default: the top prediction')
    .option('--contrast <token>', 'explain logit[target] − logit[contrast]')
    .addOption(new Option('--rules <preset>', 'LRP rule preset').choices(Object.keys(RULE_PRESETS)).default('relp'));
  addExecutionOptions(addTokenizerOptions(cmd))
    .option('--json', 'print one JSON object', false)
    .action(async (o: TokenizerCliOptions & ExecutionCliOptions & { model?: string; text: string; target?: string; contrast?: string; rules: RulePresetName; json: boolean }) => {
      const loaded = await setup(o.model, o);
      const { model } = loaded;
      const tokenizer = cliTokenizer(loaded.tokenizer, o);
      checkUnknownWords(tokenizer, [{ text: o.text, where: '--text' }], o.strict);
      const ids = tokenizer.toTokens(o.text)[0];
      const target = o.target === undefined ? undefined : tokenizer.toSingleToken(o.target);
      const contrast = o.contrast === undefined ? undefined : tokenizer.toSingleToken(o.contrast);
      const r = inputRelevance(model, ids, { target, contrast, rules: o.rules });
      // Measure every preset on the same input, so the note says what conserves rather than guessing.
      const totals: Record<string, number> = { [o.rules]: r.total };
      for (const p of Object.keys(RULE_PRESETS) as RulePresetName[]) if (p !== o.rules) totals[p] = inputRelevance(model, ids, { target: r.target, contrast, rules: p }).total;
      const conservation = conservationReport(r.output, totals);
      model.dispose();
      const tokens = tokenizer.toStrTokens(ids);
      const targetStr = tokenizer.tokenStr(r.target);
      if (o.json) {
        return printJson({ tokens, ids, relevance: r.relevance, output: r.output, total: r.total, target: r.target, target_str: targetStr, contrast: r.contrast ?? null, rules: o.rules, conservation });
      }
      const what = contrast === undefined ? `logit[${JSON.stringify(targetStr)}]` : `logit[${JSON.stringify(targetStr)}] − logit[${JSON.stringify(o.contrast)}]`;
      process.stdout.write(`${what} = ${r.output.toFixed(4)}; Σ relevance = ${r.total.toFixed(4)} (rules: ${o.rules})\n`);
      for (const line of formatConservation(conservation, o.rules)) process.stdout.write(line + '\n');
      // Colours only on a terminal, and never under NO_COLOR: pipes and files get plain text.
      if (useColor(process.stdout)) process.stdout.write(heatLine(tokens, r.relevance) + '\n');
      for (let i = 0; i < tokens.length; i++) process.stdout.write(`  ${JSON.stringify(tokens[i]).padEnd(14)} ${r.relevance[i].toFixed(4).padStart(9)}\n`);
    });
}
