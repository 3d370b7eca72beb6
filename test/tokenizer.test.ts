import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync, mkdtempSync, writeFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, type Tokenizer } from '../src/tokenizer.ts';
import { fixtureTokenizerDir, fixtureTokenizerJson } from './helpers/tokenizer-fixtures.ts';

const GPT2_DIR = new URL('./fixtures/gpt2-tokenizer/', import.meta.url).pathname;
const WORD_DIR = new URL('./fixtures/wordlevel-tokenizer/', import.meta.url).pathname;
const TOY_DIR = new URL('../models/ioi-toy/', import.meta.url).pathname;

/**
 * Independent byte-level BPE reference, written from the GPT-2 algorithm description: split with
 * the GPT-2 pattern, map bytes to printable characters, then repeatedly merge the adjacent pair
 * of lowest merge rank. Slow but obviously correct.
 */
/** GPT-2's (and GPT-NeoX's) pre-tokenizer pattern. */
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
/**
 * Qwen2's pre-tokenizer pattern (tokenizer.json Split regex), with the inline `(?i:...)` group
 * spelt out as character classes (JS has no inline flags): single digits, letters with one
 * optional leading non-letter.
 */
const QWEN2_PATTERN = /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

function makeReferenceBpe(tokenizerJsonPath: string, pattern: RegExp = GPT2_PATTERN): (text: string) => number[] {
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
  return (text: string) => {
    const ids: number[] = [];
    for (const piece of text.normalize('NFC').match(pattern) ?? []) {
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

  it('toTokens prepends BOS only when asked (GPT-2 has no BOS template), one row per text', () => {
    expect(tok.prependBos).toBe(false);
    expect(tok.toTokens('Hello world')).toEqual([[15496, 995]]);
    expect(tok.encodePrompt('Hello world')).toEqual([15496, 995]);
    expect(tok.withPrependBos(true).encodePrompt('Hello world')).toEqual([50256, 15496, 995]);
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

describe('GPT-NeoX (Pythia) byte-level BPE tokenizer', () => {
  let tok: Tokenizer;
  let vocab: Record<string, number>;
  beforeAll(async () => {
    tok = await loadTokenizer(fixtureTokenizerDir('pythia'));
    vocab = fixtureTokenizerJson('pythia').model.vocab;
  });

  it('gives the published ids and vocabulary size', () => {
    // [12092, 1533]: llama.cpp's ggml-vocab-gpt-neox test and HF tokenizers (fixture SOURCE.md).
    expect(tok.encode('Hello world')).toEqual([12092, 1533]);
    expect(tok.encode('Hello world')).toEqual([vocab.Hello, vocab['Ġworld']]);
    expect(tok.encode(' Mary')).toEqual([vocab['ĠMary']]);
    expect(tok.vocabSize).toBe(50277);
    expect(tok.bosTokenId).toBe(0);
  });

  it('matches the naive BPE reference (GPT-2 pattern, NFC) on text without runs of spaces', () => {
    const ref = makeReferenceBpe(join(fixtureTokenizerDir('pythia'), 'tokenizer.json'));
    for (const t of ['When Mary and John went to the store, John gave a drink to', ' 1732 and 12,345.67', "naïve café — don't stop 😀 Ωmega", 'e\u0301 combining']) {
      expect(tok.encode(t), t).toEqual(ref(t));
    }
  });

  it('adds no BOS by default (tokenizer_config add_bos_token false)', () => {
    expect(tok.prependBos).toBe(false);
    expect(tok.bosSource).toBe('tokenizer_config add_bos_token');
    expect(tok.toTokens('Hello world')).toEqual([[12092, 1533]]);
    expect(tok.toTokens('Hello world', { prependBos: true })).toEqual([[0, 12092, 1533]]);
  });
});

describe('Qwen2 byte-level BPE tokenizer', () => {
  let tok: Tokenizer;
  let vocab: Record<string, number>;
  beforeAll(async () => {
    tok = await loadTokenizer(fixtureTokenizerDir('qwen2'));
    vocab = fixtureTokenizerJson('qwen2').model.vocab;
  });

  it('gives the published ids, special tokens included', () => {
    // Both from the fixture's SOURCE.md (llama.cpp ggml-vocab-qwen2 cases and HF tokenizers).
    expect(tok.encode('Hello world')).toEqual([9707, 1879]);
    expect(tok.encode('<|im_start|>user\nhi<|im_end|>')).toEqual([151644, 872, 198, 6023, 151645]);
    expect(tok.vocabSize).toBe(151646);
  });

  it('splits numbers into single digits (by vocab lookup) and matches the naive BPE reference', () => {
    expect(tok.encode('1732')).toEqual(['1', '7', '3', '2'].map((d) => vocab[d]));
    expect(tok.encode(' 1732')).toEqual([vocab['Ġ'], ...['1', '7', '3', '2'].map((d) => vocab[d])]);
    const ref = makeReferenceBpe(join(fixtureTokenizerDir('qwen2'), 'tokenizer.json'), QWEN2_PATTERN);
    for (const t of ['When Mary and John went to the store, John gave a drink to', "in 1732 there were 12,345.67 people — naïve café, don't", '日本語のテキスト 😀 Ωmega', '  two spaces\n\nnewlines']) {
      expect(tok.encode(t), t).toEqual(ref(t));
    }
  });

  it('adds no BOS by default (no template, bos_token null); --prepend-bos falls back to <|endoftext|>', () => {
    expect(tok.prependBos).toBe(false);
    expect(tok.toTokens('Hello world')).toEqual([[9707, 1879]]);
    expect(tok.withPrependBos(true).toTokens('Hello world')).toEqual([[151643, 9707, 1879]]);
  });
});

describe('Llama-2 SentencePiece-BPE tokenizer', () => {
  let tok: Tokenizer;
  let vocab: Record<string, number>;
  beforeAll(async () => {
    tok = await loadTokenizer(fixtureTokenizerDir('llama2'));
    vocab = fixtureTokenizerJson('llama2').model.vocab;
  });

  it('adds <s> (id 1) by default, as its template and add_bos_token say', () => {
    // [1, 910, 338, 263, 1243]: the onnxruntime-extensions Llama-2 test (fixture SOURCE.md).
    expect(tok.toTokens('This is a test')).toEqual([[1, 910, 338, 263, 1243]]);
    expect(tok.encode('This is a test')).toEqual([910, 338, 263, 1243]);
    expect(tok.encodePrompt('Hello world')).toEqual([1, vocab['▁Hello'], vocab['▁world']]);
    expect(tok.prependBos).toBe(true);
    expect(tok.templatePrefix).toEqual([1]);
    expect(tok.withPrependBos(false).toTokens('Hello world')).toEqual([[vocab['▁Hello'], vocab['▁world']]]);
    expect(tok.toTokens('Hello world', { prependBos: false })).toEqual([[vocab['▁Hello'], vocab['▁world']]]);
  });

  it('falls back to UTF-8 bytes for characters outside the vocabulary', () => {
    const bytes = [...new TextEncoder().encode('😀')].map((b) => vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`]);
    expect(bytes.every((id) => typeof id === 'number')).toBe(true);
    expect(tok.encode('😀')).toEqual([vocab['▁'], ...bytes]);
    expect(tok.decode(tok.encode('😀 Mary'))).toBe('😀 Mary');
  });

  it('shows each token with its leading space, BOS included', () => {
    expect(tok.toStrTokens('Hello world')).toEqual(['<s>', ' Hello', ' world']);
    expect(tok.tokenStr(vocab['▁Mary'])).toBe(' Mary');
    expect(tok.tokenStr(vocab['ary'])).toBe('ary');
  });

  it('follows add_bos_token false, and the post_processor template when the config is silent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-tok-'));
    try {
      copyFileSync(join(fixtureTokenizerDir('llama2'), 'tokenizer.json'), join(dir, 'tokenizer.json'));
      const cfg = JSON.parse(readFileSync(join(fixtureTokenizerDir('llama2'), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...cfg, add_bos_token: false }));
      const off = await loadTokenizer(dir);
      expect(off.toTokens('Hello world')).toEqual([[vocab['▁Hello'], vocab['▁world']]]);
      delete cfg.add_bos_token;
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
      const tmpl = await loadTokenizer(dir);
      expect(tmpl.bosSource).toBe('post_processor template');
      expect(tmpl.toTokens('Hello world')).toEqual([[1, vocab['▁Hello'], vocab['▁world']]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads tokenizer.json files written with the newer ["a", "b"] merge pairs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-tok-'));
    try {
      const json = fixtureTokenizerJson('llama2');
      json.model.merges = json.model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m));
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
      copyFileSync(join(fixtureTokenizerDir('llama2'), 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
      const pairs = await loadTokenizer(dir);
      for (const t of ['This is a test', ' antidisestablishmentarianism 1732', 'naïve café 😀']) expect(pairs.toTokens(t), t).toEqual(tok.toTokens(t));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('word-level vocabularies', () => {
  const sentence = 'When Mary and John went to the store , John gave a drink to Mary';
  let tok: Tokenizer;
  let vocab: Record<string, number>;
  beforeAll(async () => {
    tok = await loadTokenizer(WORD_DIR);
    vocab = (JSON.parse(readFileSync(join(WORD_DIR, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
  });

  it('maps each whitespace-separated word to its vocab id and decodes back (WordPiece decoder)', () => {
    const expected = sentence.split(' ').map((w) => vocab[w]);
    const ids = tok.encode(sentence);
    expect(ids).toEqual(expected);
    expect(tok.decode(ids)).toBe(sentence);
    // Words carry no spaces in a WordPiece vocabulary; each is shown as it reads after a word.
    expect(tok.toStrTokens(sentence)).toEqual(sentence.split(' ').map((w) => ' ' + w));
  });

  it('has BOS from tokenizer_config, no BOS by default, and the vocab size of the JSON', () => {
    expect(tok.bosTokenId).toBe(vocab['<|endoftext|>']);
    expect(tok.prependBos).toBe(false);
    expect(tok.vocabSize).toBe(Object.keys(vocab).length);
    expect(tok.toTokens(sentence, { prependBos: true })[0]).toEqual([vocab['<|endoftext|>'], ...sentence.split(' ').map((w) => vocab[w])]);
    expect(tok.decode(tok.toTokens(sentence, { prependBos: true })[0])).toBe(`<|endoftext|> ${sentence}`);
  });

  it('splits punctuation off words, maps unknown words to [UNK] and rejects them as answers', () => {
    expect(tok.encode('store, Zed')).toEqual([vocab.store, vocab[','], vocab['[UNK]']]);
    expect(tok.toSingleToken('Mary')).toBe(vocab.Mary);
    expect(() => tok.toSingleToken('Mary and')).toThrow(/"Mary and" is 2 tokens, not one: \[" Mary", " and"\]/);
    expect(() => tok.toSingleToken('Zed')).toThrow(/"Zed" is not in the vocabulary \(it maps to the unknown token "\[UNK\]"\)/);
    expect(() => tok.toSingleToken(' Zed')).toThrow(/" Zed" is not in the vocabulary/);
    expect(tok.toSingleToken('[UNK]')).toBe(vocab['[UNK]']);
  });

  it('accepts " Paul" on a WordPiece vocabulary whose decoder drops the space (no decode round-trip)', () => {
    // The old check compared decode(encode(" Paul")) with " Paul"; this decoder gives "Paul".
    expect(tok.decode([vocab.Paris])).toBe('Paris');
    expect(tok.toSingleToken(' Paris')).toBe(vocab.Paris);
    expect(tok.toSingleToken(' Mary')).toBe(vocab.Mary);
  });

  it('loads a WordLevel model (whole-word lookup, unknown words to its unk_token)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-tok-'));
    try {
      const words = ['<unk>', 'Mary', 'John', 'went', 'home', '.'];
      writeFileSync(
        join(dir, 'tokenizer.json'),
        JSON.stringify({
          version: '1.0',
          added_tokens: [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
          normalizer: null,
          pre_tokenizer: { type: 'Whitespace' },
          post_processor: null,
          decoder: null,
          model: { type: 'WordLevel', vocab: Object.fromEntries(words.map((w, i) => [w, i])), unk_token: '<unk>' },
        }),
      );
      const wl = await loadTokenizer(dir);
      expect(wl.encode('Mary went home.')).toEqual([1, 3, 4, 5]);
      expect(wl.encode('Paul went home')).toEqual([0, 3, 4]);
      expect(wl.unkTokenId).toBe(0);
      expect(wl.unknownWords('Paul went home')).toEqual([{ word: 'Paul', pieces: ['<unk>'] }]);
      expect(wl.toSingleToken(' John')).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the embedded model (models/ioi-toy) tokenizer', () => {
  let tok: Tokenizer;
  let vocab: Record<string, number>;
  beforeAll(async () => {
    tok = await loadTokenizer(TOY_DIR);
    vocab = (JSON.parse(readFileSync(join(TOY_DIR, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
  });

  it('names every word of "The cat sat on the mat and Bob" that becomes [UNK] (issue 16)', () => {
    const text = 'The cat sat on the mat and Bob';
    // Independent: the words of the text that are not keys of the vocabulary JSON.
    const missing = text.split(' ').filter((w) => !(w in vocab));
    expect(missing.length).toBeGreaterThan(0);
    expect(tok.encode(text).filter((id) => id === vocab['[UNK]'])).toHaveLength(missing.length);
    expect(tok.unknownWords(text).map((w) => w.word)).toEqual(missing);
    expect(tok.unknownWords('Then, Mary and John went to the store')).toEqual([]);
  });
});

describe('single-token check across whitespace schemes', () => {
  const cases: { name: string; dir: () => string; key: string }[] = [
    { name: 'gpt2', dir: () => GPT2_DIR, key: 'ĠMary' },
    { name: 'pythia', dir: () => fixtureTokenizerDir('pythia'), key: 'ĠMary' },
    { name: 'qwen2', dir: () => fixtureTokenizerDir('qwen2'), key: 'ĠMary' },
    { name: 'llama2', dir: () => fixtureTokenizerDir('llama2'), key: '▁Mary' },
    { name: 'ioi-toy', dir: () => TOY_DIR, key: 'Mary' },
  ];
  for (const c of cases) {
    it(`${c.name}: " Mary" is the vocabulary's ${JSON.stringify(c.key)}; " Maryland-ish" is refused with its pieces`, async () => {
      const tok = await loadTokenizer(c.dir());
      const json = JSON.parse(readFileSync(join(c.dir(), 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
      const id = json.model.vocab[c.key];
      expect(typeof id).toBe('number');
      expect(tok.toSingleToken(' Mary')).toBe(id);
      expect(tok.tokenStr(id)).toBe(' Mary');
      expect(() => tok.toSingleToken(' Maryland-ish')).toThrow(/toSingleToken: " Maryland-ish" is \d+ tokens, not one: \[.+\] \(ids [\d, ]+\)/);
      expect(() => tok.toSingleToken('')).toThrow(/gives no tokens/);
    });
  }

  it('llama2: " Mary" alone encodes as two tokens (▁ + ▁Mary), yet is one token after a word', async () => {
    const tok = await loadTokenizer(fixtureTokenizerDir('llama2'));
    const vocab = fixtureTokenizerJson('llama2').model.vocab;
    expect(tok.encode(' Mary')).toEqual([vocab['▁'], vocab['▁Mary']]);
    expect(tok.encode('to Mary').slice(-1)).toEqual([vocab['▁Mary']]);
    expect(tok.toSingleToken(' Mary')).toBe(vocab['▁Mary']);
    expect(() => tok.toSingleToken(' Maryland-ish')).toThrow(/\[" Maryland", "-", "ish"\]/);
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

  it('names the file and model type when the pipeline cannot be built', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-tok-'));
    try {
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] }, decoder: { type: 'NoSuchDecoder' } }));
      await expect(loadTokenizer(dir)).rejects.toThrow(/cannot build tokenizer from .*tokenizer\.json \(model type BPE\): .*NoSuchDecoder/);
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
