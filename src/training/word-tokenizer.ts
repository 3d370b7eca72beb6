/**
 * Word-level tokenizer for the toy model, shipped as a Hugging Face `tokenizer.json`.
 *
 * @xenova/transformers 2.x (relp's former tokenizer package) could not load the `WordLevel`
 * model, so the vocabulary is written as a `WordPiece` model whose entries are whole words (no `##` continuation pieces) behind a
 * `BertPreTokenizer` (split on whitespace and punctuation). Any word outside the vocabulary
 * becomes `[UNK]`. Because the pre-tokenizer drops whitespace, " Mary" and "Mary" are the same
 * single token. Decoding puts a space before every token (" Mary", " ,"), like GPT-2 words.
 * `<|endoftext|>` is BOS/EOS (id 0) as in GPT-2.
 */
import { NAMES, OBJECTS, PLACES } from '../tasks/vocab.ts';
import { BABA_TEMPLATES, ioiTemplates } from '../tasks/ioi-templates.ts';
import type { TokenEncoder } from '../tasks/types.ts';
import { SingleTokenError } from '../tokenizer.ts';
import { BOS_TOKEN, corpusStrings, splitWords } from './corpus.ts';

/** The unknown-word token. */
export const UNK_TOKEN = '[UNK]';

/** Special tokens in id order: BOS/EOS first, then UNK. */
export const SPECIAL_TOKENS: readonly string[] = [BOS_TOKEN, UNK_TOKEN];

/**
 * Every word the training corpus and the Wang-style IOI templates can produce, sorted, without
 * special tokens. Template placeholders are dropped (their fillers come from NAMES/PLACES/OBJECTS).
 */
export function collectVocabulary(templates: readonly string[] = BABA_TEMPLATES): string[] {
  const words = new Set<string>();
  const add = (s: string) => {
    for (const w of splitWords(s.replace(/\[[A-Z]+\]/g, ' '))) words.add(w);
  };
  for (const s of corpusStrings()) add(s);
  for (const t of ioiTemplates(templates)) add(t.text);
  for (const s of [...NAMES, ...PLACES, ...OBJECTS]) add(s);
  for (const s of SPECIAL_TOKENS) words.delete(s);
  return [...words].sort();
}

/** A word-level vocabulary: id of each token (specials first). */
export interface WordVocab {
  /** Token strings by id. */
  tokens: string[];
  /** Id of each token string. */
  ids: Map<string, number>;
  bosId: number;
  eosId: number;
  unkId: number;
}

/** Builds the id mapping: `<|endoftext|>` = 0, `[UNK]` = 1, then `words` in the given order. */
export function buildVocab(words: readonly string[]): WordVocab {
  const tokens = [...SPECIAL_TOKENS];
  for (const w of words) {
    if (tokens.includes(w)) throw new Error(`buildVocab: duplicate or reserved token "${w}"`);
    if (splitWords(w).length !== 1 || splitWords(w)[0] !== w) {
      throw new Error(`buildVocab: "${w}" is not a single pre-tokenizer word (it would never be produced)`);
    }
    tokens.push(w);
  }
  const ids = new Map(tokens.map((t, i) => [t, i] as [string, number]));
  return { tokens, ids, bosId: 0, eosId: 0, unkId: 1 };
}

/**
 * Token ids of `text` as the shipped tokenizer would produce them (words outside the vocabulary
 * become `[UNK]`), optionally with a leading BOS.
 */
export function encodeWords(text: string, vocab: WordVocab, opts: { bos?: boolean } = {}): number[] {
  const out = opts.bos ? [vocab.bosId] : [];
  for (const w of splitWords(text)) out.push(vocab.ids.get(w) ?? vocab.unkId);
  return out;
}

/** Decoder pattern: the start of every token except `<|endoftext|>` (gets a space). */
const DECODE_SPACE_REGEX = '^(?!<\\|endoftext\\|>)';

/** JSON of `tokenizer.json` (HF tokenizers format) for `vocab`. */
export function tokenizerJson(vocab: WordVocab): Record<string, unknown> {
  const added = SPECIAL_TOKENS.map((content) => ({
    id: vocab.ids.get(content),
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    // Every token decodes with a leading space, as GPT-2 words do (" Mary"), so code that checks
    // `decode(encode(" Mary")) === " Mary"` (src/tasks/ioi.ts) accepts the names. BOS stays bare.
    decoder: { type: 'Replace', pattern: { Regex: DECODE_SPACE_REGEX }, content: ' ' },
    model: {
      type: 'WordPiece',
      unk_token: UNK_TOKEN,
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.tokens.map((t, i) => [t, i])),
    },
  };
}

/** JSON of `tokenizer_config.json` for the word-level tokenizer. */
export function tokenizerConfigJson(maxLength: number): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: BOS_TOKEN,
    eos_token: BOS_TOKEN,
    unk_token: UNK_TOKEN,
    pad_token: BOS_TOKEN,
    model_max_length: maxLength,
    clean_up_tokenization_spaces: false,
    do_lower_case: false,
  };
}

/**
 * A {@link TokenEncoder} over `vocab` that behaves like the shipped tokenizer.json loaded by
 * src/tokenizer.ts (same ids; decode puts a space before every token but BOS; no BOS on prompts,
 * as the file has no template), without reading a tokenizer.json. Used inside the training loop.
 */
export function vocabEncoder(vocab: WordVocab): TokenEncoder {
  return {
    encode: (text: string) => encodeWords(text, vocab),
    // No template: prompts get no BOS, as the shipped tokenizer.json (no post_processor) says.
    encodePrompt: (text: string) => encodeWords(text, vocab),
    singleToken: (text: string) => {
      const ids = encodeWords(text, vocab);
      const pieces = ids.map((id) => (id === vocab.bosId ? '' : ' ') + vocab.tokens[id]);
      if (ids.length === 0) throw new SingleTokenError(`toSingleToken: ${JSON.stringify(text)} gives no tokens`, text, 'none', ids, pieces);
      if (ids.length !== 1) {
        const shown = pieces.map((p) => JSON.stringify(p)).join(', ');
        throw new SingleTokenError(`toSingleToken: ${JSON.stringify(text)} is ${ids.length} tokens, not one: [${shown}] (ids ${ids.join(', ')})`, text, 'several', ids, pieces);
      }
      if (ids[0] === vocab.unkId && text.trim() !== vocab.tokens[vocab.unkId]) {
        const unk = vocab.tokens[vocab.unkId];
        throw new SingleTokenError(`toSingleToken: ${JSON.stringify(text)} is not in the vocabulary (it maps to the unknown token ${JSON.stringify(unk)})`, text, 'unknown', ids, [unk]);
      }
      return ids[0];
    },
    vocabSize: vocab.tokens.length,
    unkTokenId: vocab.unkId,
    decode: (ids: number[]) =>
      ids
        .map((id) => {
          const t = vocab.tokens[id];
          if (t === undefined) throw new RangeError(`decode: token id ${id} is outside the vocabulary [0, ${vocab.tokens.length})`);
          return id === vocab.bosId ? t : ' ' + t;
        })
        .join(''),
  };
}
