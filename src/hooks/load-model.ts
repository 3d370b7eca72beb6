/**
 * Load a model directory (HF GPT-2 layout) into a HookedTransformer plus its tokenizer.
 * With no directory, the embedded IOI model shipped under `models/ioi-toy` is used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HookedTransformer } from './hooked-transformer.ts';
import { initBackend } from '../backend.ts';
import { loadTokenizer, type Tokenizer } from '../tokenizer.ts';
import { loadCheckpoint } from '../models/checkpoint.ts';
import { checkpointSha256 } from '../io/file-hash.ts';

/** The embedded model's folder (shipped in the repo). */
export const EMBEDDED_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/ioi-toy');

/** A loaded model with provenance for run files. */
export interface LoadedModel {
  model: HookedTransformer;
  /** Undefined when the folder holds no tokenizer.json. */
  tokenizer: Tokenizer | undefined;
  /** Absolute model folder. */
  path: string;
  /** HF config.json as read. */
  hfConfig: Record<string, unknown>;
  /** sha256 of the weight files in the order read, then config.json (streamed, cached: io/file-hash.ts). */
  sha256: string;
  format: 'safetensors' | 'onnx';
}

/**
 * Load a model folder (default: the embedded model). Starts the tfjs backend first
 * ({@link initBackend}, idempotent), so library users never fall back to the slow `cpu` backend.
 */
export async function loadModel(dir?: string): Promise<LoadedModel> {
  await initBackend();
  const path = resolve(dir ?? EMBEDDED_MODEL_DIR);
  if (!existsSync(path)) {
    throw new Error(dir ? `model folder not found: ${path}` : `the embedded model is missing at ${path} (run npm run train:toy)`);
  }
  const ck = await loadCheckpoint(path);
  const model = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
  const tokenizer = existsSync(join(path, 'tokenizer.json')) ? await loadTokenizer(path) : undefined;
  return {
    model,
    tokenizer,
    path,
    hfConfig: JSON.parse(readFileSync(join(path, 'config.json'), 'utf8')) as Record<string, unknown>,
    sha256: checkpointSha256(ck.files),
    format: ck.format,
  };
}

/** Load a model and insist on a tokenizer (commands that take text need one). */
export async function loadModelWithTokenizer(dir?: string): Promise<LoadedModel & { tokenizer: Tokenizer }> {
  const m = await loadModel(dir);
  if (!m.tokenizer) {
    m.model.dispose();
    throw new Error(`${m.path} has no tokenizer.json; text commands need one (copy the tokenizer files into the folder)`);
  }
  return m as LoadedModel & { tokenizer: Tokenizer };
}
