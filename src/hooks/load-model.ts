/**
 * Load a model directory (Hugging Face layout: config.json, weights, tokenizer.json) into a HookedTransformer plus its tokenizer.
 * With no directory, the embedded IOI model shipped under `models/ioi-toy` is used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HookedTransformer } from './hooked-transformer.ts';
import { initBackend } from '../backend.ts';
import { loadTokenizer, type Tokenizer } from '../tokenizer.ts';
import { findWeights, loadCheckpoint, readCheckpointConfig } from '../models/checkpoint.ts';
import { openStreamedCheckpoint } from '../models/streamed-checkpoint.ts';
import { prefetchingSource } from '../models/prefetch-source.ts';
import { blockWeightBytes, cachedBlockCount, chooseExecution, type ExecutionChoice } from '../backend/memory-guard.ts';
import type { ModelConfig } from '../models/config.ts';
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
  /** Whole-model or streamed execution, and why (chosen before any weight was read). */
  execution: ExecutionChoice;
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /**
   * `true`: stream weights from disk block by block; `false`: load the whole model; undefined:
   * decide from the model's size (streamed when a 64-token pass of the whole model would overflow
   * the wasm heap). The environment variable RELP_STREAM_WEIGHTS=1|0 sets the default, so worker
   * threads follow the command's `--stream-weights` / `--no-stream-weights`.
   */
  stream?: boolean;
}

/**
 * Blocks up to this size (float32 bytes) are read one ahead on a second thread. A block in flight
 * costs about two more blocks of process memory (the reader's arrays and the one waiting), so
 * larger blocks (an 8B model's are 0.9 GB) are read in the computing thread, keeping its peak
 * memory low.
 */
export const PREFETCH_MAX_BLOCK_BYTES = 400e6;

/** Whether a streamed model reads ahead: RELP_PREFETCH=1 / 0 forces it, else by block size. */
function prefetchBlocks(config: ModelConfig): boolean {
  const env = process.env.RELP_PREFETCH;
  if (env === '1' || env === '0') return env === '1';
  return blockWeightBytes(config) <= PREFETCH_MAX_BLOCK_BYTES;
}

/** The stream setting from the options, else RELP_STREAM_WEIGHTS. */
function streamSetting(opts: LoadOptions): boolean | undefined {
  if (opts.stream !== undefined) return opts.stream;
  const env = process.env.RELP_STREAM_WEIGHTS;
  return env === '1' ? true : env === '0' ? false : undefined;
}

/**
 * Load a model folder (default: the embedded model). Starts the tfjs backend first
 * ({@link initBackend}, idempotent), so library users never fall back to the slow `cpu` backend.
 */
export async function loadModel(dir?: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  await initBackend();
  const path = resolve(dir ?? EMBEDDED_MODEL_DIR);
  if (!existsSync(path)) {
    throw new Error(dir ? `model folder not found: ${path}` : `the embedded model is missing at ${path} (run npm run train:toy)`);
  }
  const { config } = await readCheckpointConfig(path);
  const execution = chooseExecution(config, streamSetting(opts));
  if (execution.mode === 'streamed' && findWeights(path).startsWith('onnx/')) {
    throw new Error(`${path}: this model needs streamed weights (${execution.reason}), which are read from safetensors only; convert the ONNX weights to model.safetensors`);
  }
  const tokenizer = existsSync(join(path, 'tokenizer.json')) ? await loadTokenizer(path) : undefined;
  const hfConfig = JSON.parse(readFileSync(join(path, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (execution.mode === 'streamed') {
    const opened = await openStreamedCheckpoint(path);
    const source = prefetchBlocks(config) ? prefetchingSource(path, opened) : opened;
    const model = HookedTransformer.fromBlockSource(source, { keepBlocks: cachedBlockCount(config) });
    return { model, tokenizer, path, hfConfig, sha256: source.hash(), format: 'safetensors', execution };
  }
  const ck = await loadCheckpoint(path);
  const model = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
  return { model, tokenizer, path, hfConfig, sha256: checkpointSha256(ck.files), format: ck.format, execution };
}

/** Load a model and insist on a tokenizer (commands that take text need one). */
export async function loadModelWithTokenizer(dir?: string, opts: LoadOptions = {}): Promise<LoadedModel & { tokenizer: Tokenizer }> {
  const m = await loadModel(dir, opts);
  if (!m.tokenizer) {
    m.model.dispose();
    throw new Error(`${m.path} has no tokenizer.json; text commands need one (copy the tokenizer files into the folder)`);
  }
  return m as LoadedModel & { tokenizer: Tokenizer };
}
