/**
 * Test helper: the real GPT-2 tokenizer from test/fixtures/gpt2-tokenizer, loaded offline through
 * the project's `loadTokenizer` (which fills in the `model.type` the fixture's tokenizer.json lacks).
 */
import { join } from 'node:path';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'gpt2-tokenizer');

let cached: Promise<Tokenizer> | undefined;

/** GPT-2 tokenizer (byte-level BPE, 50257 tokens). Cached across calls. */
export function gpt2Tokenizer(): Promise<Tokenizer> {
  cached ??= loadTokenizer(FIXTURE);
  return cached;
}
