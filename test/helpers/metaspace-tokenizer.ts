/**
 * A tiny SentencePiece-style BPE tokenizer in Llama's layout: the normaliser prepends `▁` to the
 * text and turns every space into `▁`, there is no pre-tokenizer (so merges run across word
 * boundaries), and the template puts `<s>` in front of every prompt. Like a TinyStories/Llama
 * vocabulary, a word can lack its `▁word` token, so "Sue" alone is `[▁, Sue]`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Ids of the special tokens: `<unk>` 0, `<s>` 1, `</s>` 2. */
export const SPECIALS = ['<unk>', '<s>', '</s>'] as const;

/**
 * Write tokenizer.json and tokenizer_config.json into `dir` (created if needed) and return the
 * vocabulary. `tokens` are the multi-character tokens, each built by left-to-right merges; earlier
 * tokens' merges rank first. Every character of `tokens` and of `alphabet` is a token of its own.
 */
export function writeMetaspaceTokenizer(dir: string, tokens: readonly string[], alphabet = ''): Record<string, number> {
  const vocab: Record<string, number> = {};
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  SPECIALS.forEach(add);
  for (const ch of ['▁', ...alphabet, ...tokens.join('')]) add(ch);
  const merges: string[] = [];
  for (const t of tokens) {
    const chars = [...t];
    for (let i = 1; i < chars.length; i++) {
      const merge = `${chars.slice(0, i).join('')} ${chars[i]}`;
      if (!merges.includes(merge)) merges.push(merge);
      add(chars.slice(0, i + 1).join(''));
    }
  }
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: SPECIALS.map((s, i) => special(i, s)),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: false, ignore_merges: false, vocab, merges },
  }));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({
    tokenizer_class: 'LlamaTokenizer', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, clean_up_tokenization_spaces: false,
  }));
  return vocab;
}
