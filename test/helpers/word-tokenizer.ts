/**
 * A WordPiece tokenizer whose vocabulary is whole words `w2` … `w{vocab−1}` (ids = the numbers;
 * 0 is `<|endoftext|>`, 1 is `[UNK]`), so JSONL texts like "w3 w11 w7" pin token ids exactly. Its
 * template adds no BOS.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Write tokenizer.json and tokenizer_config.json into `dir`. */
export function writeWordTokenizer(dir: string, vocabSize: number): void {
  const vocab: Record<string, number> = { '<|endoftext|>': 0, '[UNK]': 1 };
  for (let i = 2; i < vocabSize; i++) vocab[`w${i}`] = i;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [special(0, '<|endoftext|>'), special(1, '[UNK]')],
    normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  }));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({
    tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '[UNK]',
    clean_up_tokenization_spaces: false, model_max_length: 64,
  }));
}

/** Token ids as the text the word tokenizer reads back to them. */
export const words = (ids: number[]): string => ids.map((i) => `w${i}`).join(' ');
