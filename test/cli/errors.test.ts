/**
 * Every CLI error is one line `relp: error: …`, optionally followed by one `relp: hint: …` line,
 * whatever raised it: commander's option parsing (which printed `error: …` plus 45–60 lines of
 * help), a command's own checks, or the library. Run through the real `bin/relp.js` for
 * representative errors of every command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from './run-cli.ts';
import { EMBEDDED_MODEL_DIR } from '../../src/hooks/load-model.ts';

const base = mkdtempSync(join(tmpdir(), 'relp-errors-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A copy of the embedded model's config and tokenizer, with `edit` applied to the folder. */
function modelFolder(name: string, edit: (dir: string) => void): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(EMBEDDED_MODEL_DIR, f), join(dir, f));
  edit(dir);
  return dir;
}

/**
 * Assert the one error format: a failing exit, exactly one `relp: error:` line matching `error`,
 * at most one hint right after it, every stderr line under the one `relp` prefix (notes such as
 * `relp: model …` may come first), no help text, no stack trace, nothing on stdout.
 */
function expectOneError(r: CliResult, error: RegExp | string, hint?: string): string {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter(Boolean);
  const errors = lines.filter((l) => l.startsWith('relp: error: '));
  expect(errors, r.stderr).toHaveLength(1);
  const message = errors[0]!.slice('relp: error: '.length);
  if (typeof error === 'string') expect(message).toBe(error);
  else expect(message).toMatch(error);
  const at = lines.indexOf(errors[0]!);
  const after = lines.slice(at + 1);
  expect(after.length, r.stderr).toBeLessThanOrEqual(1);
  if (after.length) expect(after[0]).toMatch(/^relp: hint: /);
  if (hint !== undefined) expect(after[0]).toBe(`relp: hint: ${hint}`);
  for (const l of lines) expect(l, r.stderr).toMatch(/^relp[ :]/);
  expect(r.stderr).not.toMatch(/Usage:|Options:|--help\s+display help/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return message;
}

describe('one error format for every command', () => {
  let badType: string;
  let truncated: string;
  let badDataset: string;
  beforeAll(() => {
    badType = modelFolder('bad-type', (d) => {
      const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, model_type: 'bert' }));
    });
    truncated = modelFolder('truncated', (d) => writeFileSync(join(d, 'model.safetensors'), readFileSync(join(EMBEDDED_MODEL_DIR, 'model.safetensors')).subarray(0, 100)));
    badDataset = join(base, 'bad.jsonl');
    const line = { clean: 'When Mary and John went to the store, John gave a drink to', corrupt: 'When Mary and John went to the store, Paul gave a drink to', answer: ' Mary', wrong: ' John' };
    writeFileSync(badDataset, `${JSON.stringify(line)}\n{"clean": "When Mary and John went\n`);
  });
  const out = () => join(base, 'out');

  // Option parsing (commander): one line with the hint to the command's help.
  it.each([
    ['demo', ['demo', '--n', '0'], /^option '--n <n>' argument '0' is invalid: expected a positive integer, got "0"$/],
    ['patch --n 0', ['patch', '--n', '0', '--out', 'x'], /^option '--n <n>' argument '0' is invalid: expected a positive integer, got "0"$/],
    ['patch, unknown option', ['patch', '--bogus', '--out', 'x'], /^unknown option '--bogus'$/],
    ['patch, a bad choice', ['patch', '--corruption', 'xyz', '--out', 'x'], /^option '--corruption <kind>' argument 'xyz' is invalid: allowed choices are/],
    ['patch, missing --out', ['patch'], /^required option '--out <dir>' not specified$/],
    ['patch, missing value', ['patch', '--out', 'x', '--n'], /^option '--n <n>' argument missing$/],
    ['logits, missing --text', ['logits'], /^required option '--text <text>' not specified$/],
    ['lrp, a bad preset', ['lrp', '--text', 'hi', '--rules', 'nope'], /^option '--rules <preset>' argument 'nope' is invalid: allowed choices are/],
    ['circuit --method foo', ['circuit', '--method', 'foo', '--out', 'x'], /^option '--method <list>' argument 'foo' is invalid: unknown circuit method "foo" \(use one of: /],
    ['compare, missing folder', ['compare'], /^missing required argument 'dir'$/],
    ['view, a bad port', ['view', '--port', '99999'], /^option '-p, --port <port>' argument '99999' is invalid: expected an integer 0–65535/],
    ['download, missing id', ['download'], /^missing required argument 'hf-model-id'$/],
    ['worker, missing --queue', ['worker'], /^required option '--queue <url>' not specified$/],
  ])('%s', async (_, args, error) => {
    expectOneError(await runCli(args), error, `see relp ${args[0]} --help`);
  });

  it('an unknown command', async () => {
    expectOneError(await runCli(['frobnicate']), /^unknown command 'frobnicate'$/, 'see relp --help');
  });

  // Checks of the commands and the library: one line, the same prefix.
  it('patch --methods foo', async () => {
    expectOneError(await runCli(['patch', '--methods', 'foo', '--out', out()]), /^unknown method "foo" \(use: activation, atp, atp\*, relp\)$/);
  });

  it('a model folder that does not exist', async () => {
    expectOneError(await runCli(['logits', '--model', join(base, 'nowhere'), '--text', 'hi']), `model folder not found: ${join(base, 'nowhere')}`);
  });

  it('a bad model_type names config.json once, by its path', async () => {
    const msg = expectOneError(await runCli(['logits', '--model', badType, '--text', 'hi']), /model_type "bert" is not supported \(supported: gpt2, /);
    expect(msg).toMatch(new RegExp(`^${join(badType, 'config.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: model_type`));
    expect(msg.split('config.json')).toHaveLength(2);
  });

  it('a safetensors file truncated to 100 bytes says it is truncated, with both sizes', async () => {
    const headerLength = readFileSync(join(EMBEDDED_MODEL_DIR, 'model.safetensors')).readBigUInt64LE(0);
    const r = await runCli(['patch', '--model', truncated, '--n', '2', '--out', out()]);
    expectOneError(r, `${join(truncated, 'model.safetensors')}: truncated safetensors file: its header length says ${headerLength} bytes of header, but the file has only 100 bytes`);
  });

  it('a bad dataset line', async () => {
    expectOneError(await runCli(['patch', '--dataset', badDataset, '--methods', 'atp', '--out', out()]), /bad\.jsonl.*2.*malformed JSON/);
  });

  it('circuit checks of its own flags', async () => {
    expectOneError(await runCli(['circuit', '--method', 'eap', '--edges', '3', '--threshold', '0.1', '--out', out()]), 'give either --edges or --threshold, not both');
  });

  it('library errors from download and worker', async () => {
    expectOneError(await runCli(['download', 'a/b', '--endpoint', 'not a url', '--dir', join(base, 'dl')]), /^invalid hub endpoint "not a url"/);
    expectOneError(await runCli(['worker', '--queue', 'http://x/y']), /^queue URL "http:\/\/x\/y" must start with redis:\/\//);
  });

  it('compare on a folder without a run', async () => {
    expectOneError(await runCli(['compare', join(base, 'empty')]), /empty\/run\.json does not exist/);
  });

  it('--out holding another run lists only what differs, with both values, and the way out as the hint', async () => {
    const dir = join(base, 'run');
    const patch = (n: string, corruption: string) => runCli(['patch', '--n', n, '--corruption', corruption, '--methods', 'atp', '--components', 'resid_pre', '--out', dir]);
    const first = await patch('4', 'abc');
    expect(first.code, first.stderr).toBe(0);
    expectOneError(
      await patch('2', 'swap'),
      `--out ${dir} holds another run: n 4 → 2, corruption abc → swap`,
      'pass --force to start a new run there (removes its run.json, circuit.json, faithfulness.json, progress.json), or use another --out',
    );
  });
});
