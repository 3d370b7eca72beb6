import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync, mkdtempSync, writeFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, type Tokenizer } from '../src/tokenizer.ts';

const GPT2_DIR = new URL('./fixtures/gpt2-tokenizer/', import.meta.url).pathname;
const WORD_DIR = new URL('./fixtures/wordlevel-tokenizer/', import.meta.url).pathname;

/**
 * Independent byte-level BPE reference, written from the GPT-2 algorithm description: split with
 * the GPT-2 pattern, map bytes to printable characters, then repeatedly merge the adjacent pair
 * of lowest merge rank. Slow but obviously correct.
 */
function makeReferenceBpe(tokenizerJsonPath: string): (text: string) => number[] {
  const json = JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')) as {
    model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
  };
  const vocab = json.model.vocab;
  const rank = new Map<string, number>();
  json.model.merges.forEach((m, i) => rank.set(Array.isArray(m) ? m.join(' ') : m, i));
  // GPT-2's byte -> unicode table: printable Latin-1 bytes map to themselves, the rest to 256+.
  const byteChar: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    byteChar[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  const pattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  return (text: string) => {
    const ids: number[] = [];
    for (const piece of text.match(pattern) ?? []) {
      let word = [...new TextEncoder().encode(piece)].map((b) => byteChar[b]);
      for (;;) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i + 1 < word.length; i++) {
          const r = rank.get(`${word[i]} ${word[i + 1]}`);
          if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
        }
        if (best < 0) break;
        word = [...word.slice(0, best), word[best] + word[best + 1], ...word.slice(best + 2)];
      }
      for (const w of word) {
        const id = vocab[w];
        if (id === undefined) throw new Error(`reference BPE: ${w} not in vocab`);
        ids.push(id);
      }
    }
    return ids;
  };
}

describe('GPT-2 byte-level BPE tokenizer', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(GPT2_DIR);
  });

  it('gives the published GPT-2 ids', () => {
    expect(tok.encode('Hello world')).toEqual([15496, 995]);
    expect(tok.encode(' Mary')).toEqual([5335]);
    expect(tok.encode(' John')).toEqual([1757]);
    expect(tok.bosTokenId).toBe(50256);
    expect(tok.vocabSize).toBe(50257);
  });

  it('matches a naive BPE reference on words that need many merges', () => {
    const ref = makeReferenceBpe(join(GPT2_DIR, 'tokenizer.json'));
    const texts = [
      'When Mary and John went to the store, John gave a drink to',
      ' tokenization of unbelievably long words: antidisestablishmentarianism',
      "naïve café — don't  stop\n\n 12345 😀 Ωmega",
      ' Maryland-ish',
    ];
    for (const t of texts) {
      const ids = tok.encode(t);
      expect(ids, t).toEqual(ref(t));
      expect(tok.decode(ids)).toBe(t); // byte-level BPE is lossless
    }
  });

  it('toTokens prepends BOS only when asked, one row per text', () => {
    expect(tok.toTokens('Hello world')).toEqual([[15496, 995]]);
    expect(tok.toTokens(['Hello world', ' Mary'], { prependBos: true })).toEqual([[50256, 15496, 995], [50256, 5335]]);
  });

  it('toStrTokens gives the text of each token with its leading space', () => {
    expect(tok.toStrTokens('Hello world Mary')).toEqual(['Hello', ' world', ' Mary']);
    expect(tok.toStrTokens(' Mary', { prependBos: true })).toEqual(['<|endoftext|>', ' Mary']);
    expect(tok.toStrTokens([5335, 1757])).toEqual([' Mary', ' John']);
  });

  it('toSingleToken returns the id or names the pieces', () => {
    expect(tok.toSingleToken(' Mary')).toBe(5335);
    expect(() => tok.toSingleToken(' Maryland-ish')).toThrow(/" Maryland-ish" is 3 tokens.*\[" Maryland", "-", "ish"\]/);
    expect(() => tok.toSingleToken('')).toThrow(/gives no tokens/);
    // GPT-2's unk_token is <|endoftext|>; asking for it by name is fine.
    expect(tok.toSingleToken('<|endoftext|>')).toBe(50256);
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([50257])).toThrow(/token id 50257 at index 0 is outside the vocabulary \[0, 50257\)/);
    expect(() => tok.toStrTokens([1, -1])).toThrow(/token id -1 at index 1/);
  });
});

describe('word-level vocabulary shipped as WordPiece', () => {
  const sentence = 'When Mary and John went to the store , John gave a drink to Mary';
  let tok: Tokenizer;
  let vocab: Record<string, number>;
  beforeAll(async () => {
    tok = await loadTokenizer(WORD_DIR);
    vocab = (JSON.parse(readFileSync(join(WORD_DIR, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
  });

  it('maps each whitespace-separated word to its vocab id and decodes back', () => {
    const expected = sentence.split(' ').map((w) => vocab[w]);
    const ids = tok.encode(sentence);
    expect(ids).toEqual(expected);
    expect(tok.decode(ids)).toBe(sentence);
    expect(tok.toStrTokens(sentence)).toEqual(sentence.split(' '));
  });

  it('has BOS from tokenizer_config and the vocab size of the JSON', () => {
    expect(tok.bosTokenId).toBe(vocab['<|endoftext|>']);
    expect(tok.vocabSize).toBe(Object.keys(vocab).length);
    expect(tok.toStrTokens(sentence, { prependBos: true })).toEqual(['<|endoftext|>', ...sentence.split(' ')]);
    expect(tok.decode(tok.toTokens(sentence, { prependBos: true })[0])).toBe(`<|endoftext|> ${sentence}`);
  });

  it('splits punctuation off words and maps unknown words to [UNK]', () => {
    expect(tok.encode('store, Zed')).toEqual([vocab.store, vocab[','], vocab['[UNK]']]);
    expect(tok.toSingleToken('Mary')).toBe(vocab.Mary);
    expect(() => tok.toSingleToken('Mary and')).toThrow(/2 tokens.*\["Mary", "and"\]/);
    expect(() => tok.toSingleToken('Zed')).toThrow(/"Zed" is not in the vocabulary \(it maps to the unknown token "\[UNK\]"\)/);
    expect(tok.toSingleToken('[UNK]')).toBe(vocab['[UNK]']);
  });
});

describe('loading', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('never calls fetch', async () => {
    const fetchSpy = vi.fn(() => {
      throw new Error('network access during tokenizer load');
    });
    vi.stubGlobal('fetch', fetchSpy);
    const tok = await loadTokenizer(GPT2_DIR);
    expect(tok.encode(' John')).toEqual([1757]);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('explains a missing tokenizer.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-tok-'));
    try {
      await expect(loadTokenizer(dir)).rejects.toThrow(/no tokenizer\.json in /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the file when tokenizer.json is not JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-tok-'));
    try {
      writeFileSync(join(dir, 'tokenizer.json'), '{ not json');
      await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer file .*tokenizer\.json is not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('works without tokenizer_config.json, taking BOS from <|endoftext|>', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-tok-'));
    try {
      copyFileSync(join(GPT2_DIR, 'tokenizer.json'), join(dir, 'tokenizer.json'));
      const tok = await loadTokenizer(dir);
      expect(tok.bosTokenId).toBe(50256);
      expect(tok.encode('Hello world')).toEqual([15496, 995]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
