import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIoi } from '../../src/tasks/ioi.ts';
import { formatJsonlDataset, loadJsonlDataset, parseJsonlDataset, writeJsonlDataset } from '../../src/tasks/jsonl.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer.ts';
import { writeMetaspaceTokenizer } from '../helpers/metaspace-tokenizer.ts';
import { fixtureTokenizerDir, fixtureTokenizerJson } from '../helpers/tokenizer-fixtures.ts';
import { gpt2Tokenizer } from './gpt2-tokenizer.ts';

let tok: Tokenizer;
let dir: string;
beforeAll(async () => {
  tok = await gpt2Tokenizer();
  dir = mkdtempSync(join(tmpdir(), 'relp-jsonl-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

describe('parseJsonlDataset: answers in context', () => {
  const WORDS = ['▁and', '▁went', '▁out', '▁gave', '▁the', '▁ball', '▁to'];
  const line = (rec: Record<string, unknown>) => JSON.stringify(rec);

  it('"answer": "Sue" resolves to the token that follows the prompt, on a tokenizer where "Sue" alone is [▁, Sue]', async () => {
    // No ▁Sue in the vocabulary, as on the TinyStories checkpoint.
    const d = join(dir, 'no-space-names');
    const vocab = writeMetaspaceTokenizer(d, [...WORDS, 'Sue', 'Ann'], '.');
    const sp = await loadTokenizer(d);
    expect(sp.encode('Sue')).toEqual([vocab['▁'], vocab.Sue]);
    const clean = 'Sue and Ann went out. Ann gave the ball to ';
    const corrupt = 'Sue and Ann went out. Sue gave the ball to ';
    const [pair] = parseJsonlDataset(line({ clean, corrupt, answer: 'Sue', wrong: 'Ann' }), sp);
    expect(pair.answerId).toBe(vocab.Sue);
    expect(pair.wrongId).toBe(vocab.Ann);
    expect(pair.cleanIds).toEqual(sp.encodePrompt(clean));
    expect(sp.encodePrompt(clean + 'Sue')).toEqual([...pair.cleanIds, vocab.Sue]);
  });

  it('an answer the tokenizer merges with the prompt, or one of two tokens, is a one-line error naming field and line', async () => {
    const d = join(dir, 'space-names');
    const vocab = writeMetaspaceTokenizer(d, ['▁Sue', '▁Ann', ...WORDS, 'Sue', 'Ann'], '.');
    const sp = await loadTokenizer(d);
    const ok = { clean: 'Sue and Ann went out. Ann gave the ball to', corrupt: 'Sue and Ann went out. Sue gave the ball to', answer: ' Sue', wrong: ' Ann' };
    expect(parseJsonlDataset(line(ok), sp)[0].answerId).toBe(vocab['▁Sue']);
    const merged = line({ ...ok, clean: `${ok.clean} `, corrupt: `${ok.corrupt} `, answer: 'Sue' });
    expect(() => parseJsonlDataset([line(ok), '', merged].join('\n'), sp, 'd.jsonl')).toThrow(
      'd.jsonl:3: field "answer" "Sue" does not follow the prompt as its own token: the prompt\'s tokens are not a prefix of prompt + answer (the tokenizer merges across the boundary: the prompt\'s [" "] becomes [" Sue"])',
    );
    expect(() => parseJsonlDataset(line({ ...ok, wrong: ' Ann Sue' }), sp, 'd.jsonl')).toThrow(
      `d.jsonl:1: field "wrong" " Ann Sue" must be a single token but splits into 2 tokens: [" Ann", " Sue"] (ids ${vocab['▁Ann']}, ${vocab['▁Sue']}) after the prompt`,
    );
  });
});

describe('parseJsonlDataset: token ids given directly', () => {
  const text = JSON.parse(GOOD) as Record<string, unknown>;
  const parse = (...recs: Record<string, unknown>[]) => parseJsonlDataset(recs.map((r) => JSON.stringify(r)).join('\n'), tok, 'ids.jsonl');

  it('uses clean_ids, corrupt_ids, answer_id and wrong_id exactly as given', () => {
    const [pair] = parse({ clean_ids: [464, 3290, 3332], corrupt_ids: [464, 3797, 3332], answer_id: 319, wrong_id: 11 });
    expect(pair.cleanIds).toEqual([464, 3290, 3332]);
    expect(pair.corruptIds).toEqual([464, 3797, 3332]);
    expect(pair.answerId).toBe(319);
    expect(pair.wrongId).toBe(11);
    // Texts are the decoded ids, for reports.
    expect(pair.clean).toBe(tok.decode([464, 3290, 3332]));
    expect(pair.answer).toBe(tok.decode([319]));
  });

  it('an id given beside its text wins; text fields without ids still resolve in context', () => {
    const [pair] = parse({ ...text, answer_id: 42 });
    expect(pair.answerId).toBe(42);
    expect(pair.answer).toBe(' Mary');
    expect(pair.wrongId).toEqual(tok.encode(' John')[0]);
    const [mixed] = parse({ ...text, clean: undefined, corrupt: undefined, clean_ids: [1, 2], corrupt_ids: [3, 4], answer_id: 5, wrong_id: 6 });
    expect([mixed.cleanIds, mixed.corruptIds, mixed.answerId, mixed.wrongId]).toEqual([[1, 2], [3, 4], 5, 6]);
  });

  it('out-of-range ids are errors naming the field and line', () => {
    const ids = { clean_ids: [1, 2, 3], corrupt_ids: [4, 5, 6], answer_id: 7, wrong_id: 8 };
    // GPT-2's vocabulary holds ids 0 … 50256.
    expect(() => parse(ids, { ...ids, answer_id: 50257 })).toThrow('ids.jsonl:2: field "answer_id" 50257 is outside the vocabulary [0, 50257)');
    expect(() => parse({ ...ids, wrong_id: -1 })).toThrow('ids.jsonl:1: field "wrong_id" -1 is outside the vocabulary [0, 50257)');
    expect(() => parse(ids, ids, { ...ids, corrupt_ids: [4, 99999, 6] })).toThrow('ids.jsonl:3: field "corrupt_ids[1]" 99999 is outside the vocabulary [0, 50257)');
  });

  it('wrong types, unequal lengths and missing fields are named', () => {
    const ids = { clean_ids: [1, 2, 3], corrupt_ids: [4, 5, 6], answer_id: 7, wrong_id: 8 };
    expect(() => parse({ ...ids, wrong_id: 1.5 })).toThrow('ids.jsonl:1: field "wrong_id" must be an integer, got 1.5');
    expect(() => parse({ ...ids, clean_ids: 'w1 w2' })).toThrow('ids.jsonl:1: field "clean_ids" must be an array of integers, got "w1 w2"');
    expect(() => parse({ ...ids, clean_ids: [1, '2', 3] })).toThrow('ids.jsonl:1: field "clean_ids[1]" must be an integer, got "2"');
    expect(() => parse({ ...ids, corrupt_ids: [4, 5] })).toThrow('ids.jsonl:1: clean and corrupt must have the same token length, but clean is 3 tokens and corrupt is 2 tokens');
    expect(() => parse({ ...ids, answer_id: undefined })).toThrow('ids.jsonl:1: missing field "answer" (or "answer_id")');
    expect(() => parse({ ...ids, answer_id: undefined, answer: ' Mary' })).toThrow(/ids\.jsonl:1: field "answer" is text, which resolves after the text prompt "clean"; with "clean_ids" alone give "answer_id"/);
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
