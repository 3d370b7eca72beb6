/**
 * A quiet, fast CLI: `relp --help` prints the help and nothing on stderr, through the bin as a
 * user calls it, and through npx (which printed an npm warning about the old `.npmrc` key on
 * every call). The bin prints the top-level help from dist/cli/help.txt, written by the build
 * from the same program: it must equal what the program renders.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.ts';
import { runCli } from './run-cli.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The program's top-level help at 80 columns (commander's width for a pipe). */
function liveHelp(): string {
  let text = '';
  buildProgram()
    .configureOutput({ writeOut: (s) => void (text += s), getOutHelpWidth: () => 80 })
    .outputHelp();
  return text;
}

describe('relp --help', () => {
  it.each(['--help', '-h', 'help'])('`relp %s` prints the program help and no warnings', async (flag) => {
    const r = await runCli([flag]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(liveHelp());
  });

  it('`relp patch --help` (rendered live) prints no warnings', async () => {
    const r = await runCli(['patch', '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: relp patch \[options\]/);
  });

  it('`npx relp --help` in the repository prints no npm warnings', async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res, rej) => {
      // npx links the repository's own package to run its bin, and linking runs `prepare` (the build,
      // which empties dist/ first) under the feet of the other test files that run the CLI. The
      // build is not what this test checks, so scripts are off; npx's own warnings still show.
      const child = spawn('npx', ['relp', '--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_ignore_scripts: 'true' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', rej);
      child.on('close', (code) => res({ code, stdout, stderr }));
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(liveHelp());
  });
});
