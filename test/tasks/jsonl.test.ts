import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIoi } from '../../src/tasks/ioi.ts';
import { formatJsonlDataset, loadJsonlDataset, parseJsonlDataset, writeJsonlDataset } from '../../src/tasks/jsonl.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer.ts';
import { fixtureTokenizerDir, fixtureTokenizerJson } from '../helpers/tokenizer-fixtures.ts';
import { gpt2Tokenizer } from './gpt2-tokenizer.ts';

let tok: Tokenizer;
let dir: string;
beforeAll(async () => {
  tok = await gpt2Tokenizer();
  dir = mkdtempSync(join(tmpdir(), 'relp-jsonl-'));
});

const GOOD = JSON.stringify({
  clean: 'When Mary and John went to the store, John gave a drink to',
  corrupt: 'When Mary and John went to the store, Paul gave a drink to',
  answer: ' Mary',
  wrong: ' John',
});

/** Writes `lines` to a fresh file and returns its path. */
function fileWith(name: string, lines: string[]): string {
  const p = join(dir, name);
  writeFileSync(p, lines.join('\n'));
  return p;
}

describe('loadJsonlDataset', () => {
  it('loads pairs, tokenizes them and skips blank lines', () => {
    const p = fileWith('good.jsonl', [GOOD, '', '   ', GOOD, '']);
    const pairs = loadJsonlDataset(p, tok);
    expect(pairs).toHaveLength(2);
    const q = pairs[0];
    expect(q.answer).toBe(' Mary');
    expect(q.answerId).toBe(5335); // " Mary" in GPT-2's vocabulary
    expect(q.wrongId).toBe(1757); // " John"
    expect(q.cleanIds).toEqual(tok.encode(q.clean));
    expect(q.corruptIds).toEqual(tok.encode(q.corrupt));
    expect(q.cleanIds).toHaveLength(q.corruptIds.length);
  });

  it('accepts CRLF line endings', () => {
    expect(parseJsonlDataset(`${GOOD}\r\n${GOOD}\r\n`, tok)).toHaveLength(2);
  });

  it('malformed JSON: names file and line', () => {
    const p = fileWith('bad-json.jsonl', [GOOD, '', '{"clean": "x",']);
    expect(() => loadJsonlDataset(p, tok)).toThrow(new RegExp(`${escape(p)}:3: malformed JSON`));
  });

  it('non-object line: names file and line', () => {
    const p = fileWith('array.jsonl', [GOOD, '["a", "b"]']);
    expect(() => loadJsonlDataset(p, tok)).toThrow(new RegExp(`${escape(p)}:2: expected a JSON object`));
  });

  it('missing field: names the field, file and line', () => {
    const rec = JSON.parse(GOOD) as Record<string, unknown>;
    delete rec.wrong;
    const p = fileWith('missing.jsonl', [GOOD, GOOD, JSON.stringify(rec)]);
    expect(() => loadJsonlDataset(p, tok)).toThrow(new RegExp(`${escape(p)}:3: missing field "wrong"`));
  });

  it('non-string field: names the field, file and line', () => {
    const rec = { ...(JSON.parse(GOOD) as Record<string, unknown>), answer: 5335 };
    const p = fileWith('nonstring.jsonl', [JSON.stringify(rec)]);
    expect(() => loadJsonlDataset(p, tok)).toThrow(new RegExp(`${escape(p)}:1: field "answer" must be a string, got 5335`));
  });

  it('multi-token answer: shows the tokens it splits into', () => {
    const rec = { ...(JSON.parse(GOOD) as Record<string, unknown>), answer: ' Xylophonia' };
    const p = fileWith('multi.jsonl', ['', JSON.stringify(rec)]);
    const pieces = tok.encode(' Xylophonia').map((id) => JSON.stringify(tok.decode([id])));
    expect(pieces.length).toBeGreaterThan(1);
    let msg = '';
    try {
      loadJsonlDataset(p, tok);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain(`${p}:2: field "answer" " Xylophonia" must be a single token but splits into ${pieces.length} tokens`);
    expect(msg).toContain(`[${pieces.join(', ')}]`);
  });

  it('multi-token wrong: names the field', () => {
    const rec = { ...(JSON.parse(GOOD) as Record<string, unknown>), wrong: ' John Smith' };
    const p = fileWith('multi-wrong.jsonl', [JSON.stringify(rec)]);
    expect(() => loadJsonlDataset(p, tok)).toThrow(new RegExp(`${escape(p)}:1: field "wrong" " John Smith" must be a single token but splits into 2 tokens: \\[" John", " Smith"\\]`));
  });

  it('unequal clean/corrupt token lengths: shows both lengths', () => {
    const rec = { ...(JSON.parse(GOOD) as Record<string, unknown>), corrupt: 'When Mary and John went to the store, Xylophonia gave a drink to' };
    const p = fileWith('unequal.jsonl', [GOOD, JSON.stringify(rec)]);
    const a = tok.encode(JSON.parse(GOOD).clean as string).length;
    const b = tok.encode(rec.corrupt).length;
    expect(a).not.toBe(b);
    expect(() => loadJsonlDataset(p, tok)).toThrow(
      new RegExp(`${escape(p)}:2: clean and corrupt must have the same token length, but clean is ${a} tokens and corrupt is ${b} tokens`),
    );
  });

  it('empty dataset and unreadable file are errors naming the file', () => {
    const p = fileWith('empty.jsonl', ['', '  ']);
    expect(() => loadJsonlDataset(p, tok)).toThrow(new RegExp(`${escape(p)}: dataset contains no prompt pairs`));
    const missing = join(dir, 'nope.jsonl');
    expect(() => loadJsonlDataset(missing, tok)).toThrow(new RegExp(`cannot read dataset ${escape(missing)}`));
  });

  it('inline text uses <inline> as the source name', () => {
    expect(() => parseJsonlDataset(`${GOOD}\n{oops`, tok)).toThrow(/<inline>:2: malformed JSON/);
  });
});

describe('parseJsonlDataset on other whitespace schemes', () => {
  it('WordPiece whose decoder drops spaces: " Mary" is accepted (no decode round-trip), an unknown word is named', async () => {
    const wordDir = join(import.meta.dirname, '..', 'fixtures', 'wordlevel-tokenizer');
    const wp = await loadTokenizer(wordDir);
    const vocab = (JSON.parse(readFileSync(join(wordDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
    expect(wp.decode([vocab.Mary])).toBe('Mary'); // what made the old round-trip check fail
    const line = JSON.stringify({ clean: 'When Mary and John went to the store , John gave a drink to', corrupt: 'When Mary and John went to the store , Bob gave a drink to', answer: ' Mary', wrong: ' John' });
    const [pair] = parseJsonlDataset(line, wp);
    expect(pair.answerId).toBe(vocab.Mary);
    expect(pair.wrongId).toBe(vocab.John);
    const unknown = JSON.stringify({ ...JSON.parse(line), answer: ' Zed' });
    expect(() => parseJsonlDataset(unknown, wp, 'd.jsonl')).toThrow(/d\.jsonl:1: field "answer" " Zed" is not a single known token: " Zed" is not in the vocabulary \(it maps to the unknown token "\[UNK\]"\)/);
  });

  it('Llama: prompts get <s> by default, answers resolve to ▁Name', async () => {
    const llama = await loadTokenizer(fixtureTokenizerDir('llama2'));
    const vocab = fixtureTokenizerJson('llama2').model.vocab;
    const [pair] = parseJsonlDataset(GOOD, llama);
    expect(pair.answerId).toBe(vocab['▁Mary']);
    expect(pair.wrongId).toBe(vocab['▁John']);
    expect(pair.cleanIds).toEqual([1, ...llama.encode(pair.clean)]);
    expect(parseJsonlDataset(GOOD, llama.withPrependBos(false))[0].cleanIds).toEqual(llama.encode(pair.clean));
    // Pieces are named with their leading space, though Llama's decoder strips it at a text's start.
    const two = JSON.stringify({ ...(JSON.parse(GOOD) as Record<string, unknown>), wrong: ' John Smith' });
    expect(() => parseJsonlDataset(two, llama, 'l.jsonl')).toThrow(
      `l.jsonl:1: field "wrong" " John Smith" must be a single token but splits into 2 tokens: [" John", " Smith"] (ids ${vocab['▁John']}, ${vocab['▁Smith']})`,
    );
  });
});

describe('writeJsonlDataset', () => {
  it('round-trips generated IOI pairs, including meta', () => {
    const pairs = generateIoi(tok, { n: 12, seed: 4, corruption: 'abc' });
    const p = join(dir, 'sub', 'ioi.jsonl');
    writeJsonlDataset(p, pairs);
    const text = readFileSync(p, 'utf8');
    expect(text.trimEnd().split('\n')).toHaveLength(12);
    expect(text).toBe(formatJsonlDataset(pairs));
    expect(loadJsonlDataset(p, tok)).toEqual(pairs);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
