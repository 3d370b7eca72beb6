/**
 * Test helper: the real GPT-2 tokenizer from test/fixtures/gpt2-tokenizer, loaded offline through
 * the project's `loadTokenizer`.
 *
 * The fixture's tokenizer.json has no `model.type`; @xenova/transformers then builds a word-level
 * "legacy" model that maps every out-of-vocabulary word to <|endoftext|> instead of running BPE.
 * Until the loader handles that, we load a temporary copy with `"type": "BPE"` filled in.
 */
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'gpt2-tokenizer');

let cached: Promise<Tokenizer> | undefined;

/** GPT-2 tokenizer (byte-level BPE, 50257 tokens). Cached across calls. */
export function gpt2Tokenizer(): Promise<Tokenizer> {
  cached ??= (async () => {
    const json = JSON.parse(readFileSync(join(FIXTURE, 'tokenizer.json'), 'utf8')) as { model: { type?: string } };
    if (json.model.type !== undefined) return loadTokenizer(FIXTURE);
    const dir = mkdtempSync(join(tmpdir(), 'relp-gpt2-tok-'));
    json.model.type = 'BPE';
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    for (const f of ['tokenizer_config.json', 'config.json']) {
      if (existsSync(join(FIXTURE, f))) copyFileSync(join(FIXTURE, f), join(dir, f));
    }
    return loadTokenizer(dir);
  })();
  return cached;
}
