/**
 * The CLI's tokenizer flags on the embedded model: unknown words warn with the word named (issue 16:
 * `relp logits --text "The cat sat on the mat and Bob"` printed [UNK] silently), fail under
 * --strict, and --prepend-bos / --no-prepend-bos override the tokenizer's BOS template.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.ts';
import { runCli } from './run-cli.ts';

const TOY_VOCAB = (JSON.parse(readFileSync(new URL('../../models/ioi-toy/tokenizer.json', import.meta.url), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
const TEXT = 'The cat sat on the mat and Bob';
// Independent of the tokenizer code: the words of TEXT that are not keys of the vocabulary JSON.
const MISSING = TEXT.split(' ').filter((w) => !(w in TOY_VOCAB));

describe('relp logits on the embedded model', () => {
  it('warns about the words that become [UNK], naming each, and still answers', async () => {
    expect(MISSING.length).toBeGreaterThan(0);
    const r = await runCli(['logits', '--text', TEXT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { ids: number[] };
    expect(out.ids.filter((id) => id === TOY_VOCAB['[UNK]'])).toHaveLength(MISSING.length);
    expect(r.stderr).toMatch(/relp: warning: words not in the vocabulary \(281 tokens\) become the unknown token "\[UNK\]": --text: /);
    for (const w of MISSING) expect(r.stderr).toContain(JSON.stringify(w));
    expect(r.stderr).toMatch(/pass --strict to make this an error/);
  });

  it('fails under --strict with the words named, and prints nothing on stdout', async () => {
    const r = await runCli(['logits', '--text', TEXT, '--strict']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/relp: error: words not in the vocabulary .*--text: .*"cat".*\(--strict\)/);
  });

  it('adds no BOS by default (the toy tokenizer has no template); --prepend-bos adds it, --no-prepend-bos keeps it off', async () => {
    const text = 'Then, Mary and John went to the store';
    const expected = text.replace(',', ' ,').split(' ').map((w) => TOY_VOCAB[w]);
    const plain = await runCli(['logits', '--text', text, '--json']);
    expect(plain.code, plain.stderr).toBe(0);
    expect((JSON.parse(plain.stdout) as { ids: number[] }).ids).toEqual(expected);
    expect(plain.stderr).not.toMatch(/warning/);
    const bos = await runCli(['logits', '--text', text, '--json', '--prepend-bos']);
    expect((JSON.parse(bos.stdout) as { ids: number[] }).ids).toEqual([TOY_VOCAB['<|endoftext|>'], ...expected]);
    const off = await runCli(['logits', '--text', text, '--json', '--no-prepend-bos']);
    expect((JSON.parse(off.stdout) as { ids: number[] }).ids).toEqual(expected);
  });

  it('every text command lists the BOS and --strict flags', () => {
    const program = buildProgram();
    for (const name of ['logits', 'lrp', 'patch', 'circuit', 'demo']) {
      const help = program.commands.find((c) => c.name() === name)!.helpInformation();
      expect(help, name).toMatch(/--prepend-bos/);
      expect(help, name).toMatch(/--no-prepend-bos/);
      expect(help, name).toMatch(/--strict/);
    }
  });
});
