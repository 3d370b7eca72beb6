/** `relp logits`: next-token logits of a text. */
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { addTokenizerOptions, checkUnknownWords, cliTokenizer, printJson, setup, addExecutionOptions, type ExecutionCliOptions, type TokenizerCliOptions } from '../shared.ts';

export function register(program: Command): void {
  const cmd = program
    .command('logits')
    .description('Print the tokens and the top-5 next tokens of a text (or, with --json, the full last-position logits).')
    .option('--model <dir>', 'HF-layout model folder (default: the embedded IOI model)')
    .requiredOption('--text <text>', 'input text');
  addExecutionOptions(addTokenizerOptions(cmd))
    .option('--json', 'print exactly one JSON object {"ids": [...], "logits": [...]}', false)
    .action(async (o: TokenizerCliOptions & ExecutionCliOptions & { model?: string; text: string; json: boolean }) => {
      const loaded = await setup(o.model, o);
      const { model } = loaded;
      const tokenizer = cliTokenizer(loaded.tokenizer, o);
      checkUnknownWords(tokenizer, [{ text: o.text, where: '--text' }], o.strict);
      const ids = tokenizer.toTokens(o.text)[0];
      if (ids.length === 0) throw new Error('--text tokenizes to no tokens');
      const last = tf.tidy(() => {
        const lg = model.forward([ids], { lastPositionOnly: true });
        return tf.reshape(lg, [-1]);
      });
      const logits = Array.from(await last.data());
      last.dispose();
      model.dispose();
      if (o.json) return printJson({ ids, logits });
      const strs = tokenizer.toStrTokens(ids);
      process.stdout.write(`tokens (${ids.length}): ${strs.map((s, i) => `${JSON.stringify(s)}:${ids[i]}`).join(' ')}\n`);
      const max = Math.max(...logits);
      const z = logits.reduce((s, v) => s + Math.exp(v - max), 0);
      const top = logits.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5);
      process.stdout.write('top-5 next tokens:\n');
      for (const [v, i] of top) {
        process.stdout.write(`  ${JSON.stringify(tokenizer.tokenStr(i)).padEnd(16)} id ${String(i).padStart(6)}  logit ${v.toFixed(3).padStart(8)}  p ${(Math.exp(v - max) / z).toFixed(4)}\n`);
      }
    });
}
