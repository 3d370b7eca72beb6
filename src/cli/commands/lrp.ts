/** `relp lrp`: per-token input relevance of the next-token logit (or a logit difference). */
import type { Command } from 'commander';
import { Option } from 'commander';
import { heatLine, inputRelevance } from '../../relp/input-relevance.ts';
import { RULE_PRESETS } from '../../rules/rules.ts';
import { printJson, setup } from '../shared.ts';

export function register(program: Command): void {
  program
    .command('lrp')
    .description('LRP explanation: relevance of each input token for the next-token logit (or a logit difference), as a heat line or JSON.')
    .option('--model <dir>', 'HF-layout model folder (default: the embedded IOI model)')
    .requiredOption('--text <text>', 'input text')
    .option('--target <token>', 'token to explain (text of one token, e.g. " Mary"); default: the top prediction')
    .option('--contrast <token>', 'explain logit[target] − logit[contrast]')
    .addOption(new Option('--rules <preset>', 'LRP rule preset').choices(Object.keys(RULE_PRESETS)).default('relp'))
    .option('--prepend-bos', 'prepend the BOS token', false)
    .option('--json', 'print one JSON object', false)
    .action(async (o: { model?: string; text: string; target?: string; contrast?: string; rules: string; prependBos: boolean; json: boolean }) => {
      const { model, tokenizer } = await setup(o.model);
      const ids = tokenizer.toTokens(o.text, { prependBos: o.prependBos })[0];
      const target = o.target === undefined ? undefined : tokenizer.toSingleToken(o.target);
      const contrast = o.contrast === undefined ? undefined : tokenizer.toSingleToken(o.contrast);
      const r = inputRelevance(model, ids, { target, contrast, rules: o.rules });
      model.dispose();
      const tokens = tokenizer.toStrTokens(ids);
      const targetStr = tokenizer.decode([r.target]);
      if (o.json) {
        return printJson({ tokens, ids, relevance: r.relevance, output: r.output, total: r.total, target: r.target, target_str: targetStr, contrast: r.contrast ?? null, rules: o.rules });
      }
      const what = contrast === undefined ? `logit[${JSON.stringify(targetStr)}]` : `logit[${JSON.stringify(targetStr)}] − logit[${JSON.stringify(o.contrast)}]`;
      process.stdout.write(`${what} = ${r.output.toFixed(4)}; Σ relevance = ${r.total.toFixed(4)} (rules: ${o.rules})\n`);
      process.stdout.write(heatLine(tokens, r.relevance) + '\n');
      for (let i = 0; i < tokens.length; i++) process.stdout.write(`  ${JSON.stringify(tokens[i]).padEnd(14)} ${r.relevance[i].toFixed(4).padStart(9)}\n`);
    });
}
