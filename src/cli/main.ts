/**
 * The `relp` command line. Each command lives in `src/cli/commands/<name>.ts` and exports
 * `register(program)`; this file only assembles them, so the CLI stays a thin layer over the library.
 */
import { Command } from 'commander';
import { commandModules } from './commands/index.ts';
import { reportError, throwParseErrors } from './errors.ts';

/** Build the commander program with every command registered (also used by the README test). */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('relp')
    .description('Relevance patching, attribution patching and circuits for transformers: GPT-2, GPT-NeoX, Llama, Qwen2, Mistral, Gemma-2 (TensorFlow.js).')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const m of commandModules) m.register(program);
  // A usage error is one line like any other error, not commander's message plus the help.
  throwParseErrors(program);
  return program;
}

/** Entry point used by `bin/relp.js`. */
export async function main(argv: string[]): Promise<void> {
  // A closed pipe (e.g. `relp logits ... | head`) is a normal way for output to end.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    reportError(err);
  }
}
