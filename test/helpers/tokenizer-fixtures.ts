/**
 * Test helper: the real tokenizers of test/fixtures/tokenizers/<name>/ as model folders.
 *
 * The fixtures store `tokenizer.json.gz` (compact JSON, gzipped to keep the clone small); this
 * unpacks it once per process into a temporary folder beside a copy of `tokenizer_config.json`,
 * so `loadTokenizer(dir)` reads a normal HF layout.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** Names of the fixture tokenizers. */
export const FIXTURE_TOKENIZERS = ['pythia', 'llama2', 'qwen2'] as const;
export type FixtureTokenizer = (typeof FIXTURE_TOKENIZERS)[number];

const ROOT = join(import.meta.dirname, '..', 'fixtures', 'tokenizers');
const dirs = new Map<FixtureTokenizer, string>();

/** A folder holding `tokenizer.json` and `tokenizer_config.json` of fixture `name`. */
export function fixtureTokenizerDir(name: FixtureTokenizer): string {
  let dir = dirs.get(name);
  if (dir && existsSync(join(dir, 'tokenizer.json'))) return dir;
  dir = mkdtempSync(join(tmpdir(), `relp-tok-${name}-`));
  writeFileSync(join(dir, 'tokenizer.json'), gunzipSync(readFileSync(join(ROOT, name, 'tokenizer.json.gz'))));
  copyFileSync(join(ROOT, name, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  dirs.set(name, dir);
  return dir;
}

/** The parsed `tokenizer.json` of fixture `name` (for vocab lookups by hand). */
export function fixtureTokenizerJson(name: FixtureTokenizer): { model: { vocab: Record<string, number>; merges: (string | [string, string])[] }; added_tokens: { id: number; content: string }[] } {
  return JSON.parse(readFileSync(join(fixtureTokenizerDir(name), 'tokenizer.json'), 'utf8'));
}
