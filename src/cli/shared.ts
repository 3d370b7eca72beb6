/**
 * Helpers shared by CLI commands: option parsers, model loading, output.
 */
import { InvalidArgumentError } from 'commander';
import { initBackend } from '../backend.ts';
import { loadModel, loadModelWithTokenizer, type LoadedModel } from '../hooks/load-model.ts';
import type { Tokenizer } from '../tokenizer.ts';

/** commander parser for a positive integer option. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${v}"`);
  return n;
}

/** commander parser for an integer option (seeds). */
export function integer(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${v}"`);
  return n;
}

/** commander parser for a finite number. */
export function finite(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${v}"`);
  return n;
}

/** Start the backend and load a model with its tokenizer (default: the embedded model). */
export async function setup(modelDir: string | undefined): Promise<LoadedModel & { tokenizer: Tokenizer }> {
  const backend = await initBackend();
  const m = await loadModelWithTokenizer(modelDir);
  process.stderr.write(`relp: model ${m.path} (${m.model.cfg.nLayers} layers, ${m.model.cfg.nHeads} heads, d_model ${m.model.cfg.dModel}) on ${backend}\n`);
  return m;
}

/** Start the backend and load a model (tokenizer optional). */
export async function setupModel(modelDir: string | undefined): Promise<LoadedModel> {
  await initBackend();
  return loadModel(modelDir);
}

/** Print one JSON object on stdout. */
export function printJson(x: unknown): void {
  process.stdout.write(JSON.stringify(x) + '\n');
}
