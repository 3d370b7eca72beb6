/** `relp lrp`: per-token input relevance of the next-token logit (or a logit difference). */
import type { Command } from 'commander';
import { Option } from 'commander';
import { heatLine, inputRelevance } from '../../relp/input-relevance.ts';
import { RULE_PRESETS } from '../../rules/rules.ts';
import { addTokenizerOptions, checkUnknownWords, cliTokenizer, printJson, setup, type TokenizerCliOptions } from '../shared.ts';

export function register(program: Command): void {
  const cmd = program
    .command('lrp')
    .description('LRP explanation: relevance of each input token for the next-token logit (or a logit difference), as a heat line or JSON.')
    .option('--model <dir>', 'HF-layout model folder (default: the embedded IOI model)')
    .requiredOption('--text <text>', 'input text')
    .option('--target <token>', 'token to explain (text of one token, e.g. " Mary"); default: the top prediction')
    .option('--contrast <token>', 'explain logit[target] − logit[contrast]')
    .addOption(new Option('--rules <preset>', 'LRP rule preset').choices(Object.keys(RULE_PRESETS)).default('relp'));
  addTokenizerOptions(cmd)
    .option('--json', 'print one JSON object', false)
    .action(async (o: TokenizerCliOptions & { model?: string; text: string; target?: string; contrast?: string; rules: string; json: boolean }) => {
      const loaded = await setup(o.model);
      const { model } = loaded;
      const tokenizer = cliTokenizer(loaded.tokenizer, o);
      checkUnknownWords(tokenizer, [{ text: o.text, where: '--text' }], o.strict);
      const ids = tokenizer.toTokens(o.text)[0];
      const target = o.target === undefined ? undefined : tokenizer.toSingleToken(o.target);
      const contrast = o.contrast === undefined ? undefined : tokenizer.toSingleToken(o.contrast);
      const r = inputRelevance(model, ids, { target, contrast, rules: o.rules });
      model.dispose();
      const tokens = tokenizer.toStrTokens(ids);
      const targetStr = tokenizer.tokenStr(r.target);
      if (o.json) {
        return printJson({ tokens, ids, relevance: r.relevance, output: r.output, total: r.total, target: r.target, target_str: targetStr, contrast: r.contrast ?? null, rules: o.rules });
      }
      const what = contrast === undefined ? `logit[${JSON.stringify(targetStr)}]` : `logit[${JSON.stringify(targetStr)}] − logit[${JSON.stringify(o.contrast)}]`;
      process.stdout.write(`${what} = ${r.output.toFixed(4)}; Σ relevance = ${r.total.toFixed(4)} (rules: ${o.rules})\n`);
      process.stdout.write(heatLine(tokens, r.relevance) + '\n');
      for (let i = 0; i < tokens.length; i++) process.stdout.write(`  ${JSON.stringify(tokens[i]).padEnd(14)} ${r.relevance[i].toFixed(4).padStart(9)}\n`);
    });
}
