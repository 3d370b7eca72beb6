/**
 * The `relp` command line. Each command lives in `src/cli/commands/<name>.ts` and exports
 * `register(program)`; this file only assembles them, so the CLI stays a thin layer over the library.
 */
import { Command } from 'commander';
import { commandModules } from './commands/index.ts';

/** Build the commander program with every command registered (also used by the README test). */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('relp')
    .description('Relevance patching, attribution patching and circuits for GPT-2-style transformers (TensorFlow.js).')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const m of commandModules) m.register(program);
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
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`relp: error: ${msg}\n`);
    if (process.env.RELP_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = 1;
  }
}
