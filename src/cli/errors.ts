/**
 * How the CLI reports an error, whatever raised it (commander's option parsing, a command's own
 * checks, the library): one line `relp: error: <message>`, then at most one line
 * `relp: hint: <what to do>`, never the help text and never a stack trace (unless RELP_DEBUG).
 */
import { CommanderError, type Command } from 'commander';
import { RunFolderConflictError } from '../contracts/run-folder.ts';

/** commander's exits that are not errors: help or the version was asked for (or shown for a bare `relp`). */
const NOT_ERRORS = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

/** A command-line usage error from commander (bad option value, unknown option, missing option), with the command it belongs to. */
export class UsageError extends Error {
  /** `relp` or `relp <command>`. */
  readonly command: string;

  constructor(err: CommanderError, command: string) {
    // commander writes "error: option '--n <n>' argument '0' is invalid. expected …".
    super(err.message.replace(/^error: /, '').replace(/ is invalid\. (\w)/, (_, c: string) => ` is invalid: ${c.toLowerCase()}`));
    this.name = 'UsageError';
    this.command = command;
  }
}

/**
 * Make commander throw its parse errors (instead of printing them with its own `error:` prefix and
 * exiting) on the program and every command, so {@link reportError} prints them like any other.
 */
export function throwParseErrors(program: Command): void {
  program.configureOutput({ outputError: () => {} });
  for (const cmd of [program, ...program.commands]) {
    const name = cmd === program ? 'relp' : `relp ${cmd.name()}`;
    cmd.exitOverride((err) => {
      throw NOT_ERRORS.has(err.code) ? err : new UsageError(err, name);
    });
  }
}

/** One line: a multi-line message (a list of problems, a parenthesised note) joined up. */
function oneLine(message: string): string {
  const [first = '', ...rest] = message.split('\n').map((l) => l.trim().replace(/^- /, '')).filter(Boolean);
  return rest.reduce((out, l, i) => out + (l.startsWith('(') || (i === 0 && out.endsWith(':')) ? ' ' : '; ') + l, first);
}

/** The error line and the optional hint line for an error (without the `relp: …:` prefixes). */
export function describeError(err: unknown): { error: string; hint?: string } {
  if (err instanceof UsageError) return { error: oneLine(err.message), hint: `see ${err.command} --help` };
  if (err instanceof RunFolderConflictError) {
    // The library names its options; the CLI user knows them as --out and --force.
    return {
      error: `--out ${err.dir} holds another run: ${err.differences.join('; ')}`,
      hint: `pass --force to start a new run there (removes its ${err.files.join(', ')}), or use another --out`,
    };
  }
  return { error: oneLine(err instanceof Error ? err.message : String(err)) };
}

/**
 * Print an error the CLI's one way and set a failing exit code. commander's "help was shown"
 * exits are not errors: nothing is printed and their exit code is kept.
 */
export function reportError(err: unknown, stderr: NodeJS.WritableStream = process.stderr): void {
  if (err instanceof CommanderError && NOT_ERRORS.has(err.code)) {
    process.exitCode = err.exitCode;
    return;
  }
  const { error, hint } = describeError(err);
  stderr.write(`relp: error: ${error}\n`);
  if (hint) stderr.write(`relp: hint: ${hint}\n`);
  if (process.env.RELP_DEBUG && err instanceof Error && err.stack) stderr.write(err.stack + '\n');
  process.exitCode = 1;
}
