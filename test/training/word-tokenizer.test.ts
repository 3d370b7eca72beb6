import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorpusGenerator } from '../../src/training/corpus.ts';
import { buildVocab, collectVocabulary, encodeWords, tokenizerConfigJson, tokenizerJson, vocabEncoder } from '../../src/training/word-tokenizer.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer.ts';
import { filterSingleTokenWords, generateIoi } from '../../src/tasks/ioi.ts';
import { NAMES, OBJECTS, PLACES } from '../../src/tasks/vocab.ts';

const vocab = buildVocab(collectVocabulary());
let dir = '';
let tok: Tokenizer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'relp-wordtok-'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(vocab)));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfigJson(32)));
  tok = await loadTokenizer(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('word-level tokenizer.json', () => {
  it('loads through loadTokenizer with the vocabulary ids and BOS = <|endoftext|> = 0', () => {
    expect(tok.vocabSize).toBe(vocab.tokens.length);
    expect(tok.bosTokenId).toBe(0);
    expect(tok.toTokens('Mary', { prependBos: true })).toEqual([[0, vocab.ids.get('Mary')]]);
  });

  it('encodes corpus text exactly like encodeWords and decodes like vocabEncoder', () => {
    const enc = vocabEncoder(vocab);
    for (const s of new CorpusGenerator({ seed: 4 }).take(300)) {
      const ids = tok.encode(s.text);
      expect(ids).toEqual(encodeWords(s.text, vocab));
      expect(ids.map((i) => vocab.tokens[i])).toEqual(s.words);
      expect(tok.decode(ids)).toBe(enc.decode(ids));
    }
  });

  it('maps unknown words to [UNK] and never splits a known word', () => {
    expect(tok.encode('Zebedee went to the moon')).toEqual([1, vocab.ids.get('went'), vocab.ids.get('to'), vocab.ids.get('the'), 1]);
    expect(tok.encode('Mary,John.')).toEqual([vocab.ids.get('Mary'), vocab.ids.get(','), vocab.ids.get('John'), vocab.ids.get('.')]);
  });

  it('decodes every token with a leading space like GPT-2 words, BOS without', () => {
    expect(tok.decode([vocab.ids.get('Mary')!])).toBe(' Mary');
    expect(tok.toStrTokens('Then, Mary', { prependBos: true })).toEqual(['<|endoftext|>', ' Then', ' ,', ' Mary']);
  });

  it('works with the IOI generator: every name, place and object is kept as a single token', () => {
    expect(filterSingleTokenWords(tok, NAMES).dropped).toEqual([]);
    expect(filterSingleTokenWords(tok, PLACES).dropped).toEqual([]);
    expect(filterSingleTokenWords(tok, OBJECTS).dropped).toEqual([]);
    const pairs = generateIoi(tok, { n: 20, seed: 1, corruption: 'abc' });
    for (const p of pairs) expect(p.cleanIds).not.toContain(1);
    expect(generateIoi(vocabEncoder(vocab), { n: 20, seed: 1, corruption: 'abc' })).toEqual(pairs);
  });

  it('rejects a vocabulary word the pre-tokenizer could never produce', () => {
    expect(() => buildVocab(['a', 'b.c'])).toThrow(/"b\.c" is not a single pre-tokenizer word/);
    expect(() => buildVocab(['a', 'a'])).toThrow(/duplicate/);
  });
});
