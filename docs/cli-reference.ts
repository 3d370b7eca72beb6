/**
 * The README's CLI reference, generated from the commander program itself (`buildProgram()`), so
 * it cannot drift from the real `--help` texts: `test/readme.test.ts` fails when the README's
 * section differs from what this renders.
 *
 *   npx tsx docs/cli-reference.ts            # print the section
 *   npx tsx docs/cli-reference.ts --write    # rewrite it in README.md
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/main.ts';

/** First line of the generated section in README.md. */
export const CLI_BEGIN = '<!-- BEGIN CLI REFERENCE: generated from buildProgram() by `npx tsx docs/cli-reference.ts --write`; do not edit by hand -->';
/** Last line of the generated section. */
export const CLI_END = '<!-- END CLI REFERENCE -->';
/** Help is wrapped at this width, whatever the terminal. */
export const HELP_WIDTH = 100;

/** The README next to this folder. */
export const README_PATH = resolve(fileURLToPath(new URL('..', import.meta.url)), 'README.md');

/** Placeholder home so machine-specific defaults (the download cache) render as `~/...`. */
const FAKE_HOME = '/__relp_home__';

/** Build the program with a neutral environment (no user cache dirs in the defaults). */
function neutralProgram(): Command {
  const keys = ['HOME', 'XDG_CACHE_HOME', 'RELP_CACHE_DIR', 'HF_ENDPOINT'] as const;
  const saved = keys.map((k) => [k, process.env[k]] as const);
  try {
    for (const k of keys) delete process.env[k];
    process.env.HOME = FAKE_HOME;
    return buildProgram();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** The full `--help` output of one command (including text added after the options). */
function helpOf(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => void (text += s), writeErr: (s) => void (text += s), getOutHelpWidth: () => HELP_WIDTH, getErrHelpWidth: () => HELP_WIDTH });
  cmd.outputHelp();
  return text.split(FAKE_HOME).join('~').replace(/[ \t]+$/gm, '').trimEnd();
}

/** The command path as typed, e.g. `relp patch`. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Every command of the program, depth first (the program itself first). */
export function allCommands(program: Command = neutralProgram()): Command[] {
  const out: Command[] = [];
  const walk = (c: Command) => {
    out.push(c);
    for (const sub of c.commands) walk(sub);
  };
  walk(program);
  return out;
}

/** The generated README section, markers included. */
export function renderCliReference(): string {
  const parts = [CLI_BEGIN, ''];
  for (const cmd of allCommands()) {
    parts.push(`#### \`${commandPath(cmd)} --help\``, '', '```text', helpOf(cmd), '```', '');
  }
  parts.push(CLI_END);
  return parts.join('\n');
}

/** The section between (and including) the markers of a README text, or undefined. */
export function extractCliSection(readme: string): string | undefined {
  const a = readme.indexOf(CLI_BEGIN);
  const b = readme.indexOf(CLI_END);
  if (a < 0 || b < a) return undefined;
  return readme.slice(a, b + CLI_END.length);
}

/** The README text with its section replaced by `section`. */
export function replaceCliSection(readme: string, section: string): string {
  const cur = extractCliSection(readme);
  if (cur === undefined) throw new Error(`README has no CLI reference markers (${CLI_BEGIN} … ${CLI_END})`);
  return readme.replace(cur, () => section);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const section = renderCliReference();
  if (process.argv.includes('--write')) {
    const readme = readFileSync(README_PATH, 'utf8');
    const next = replaceCliSection(readme, section);
    writeFileSync(README_PATH, next);
    process.stdout.write(next === readme ? 'README.md: CLI reference already up to date\n' : 'README.md: CLI reference rewritten\n');
  } else {
    process.stdout.write(section + '\n');
  }
}
