/**
 * Load a checkpoint folder (HF layout, any supported `model_type`) into a validated config + an
 * HF-native state dict (names as the architecture's converter lists them; see architectures/).
 *
 * Looked for, in order: `model.safetensors`, `model.safetensors.index.json` (sharded),
 * `onnx/model.onnx`, `onnx/decoder_model.onnx` (transformers.js layout). The result is pure
 * data and fully checked against config.json before it is returned.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { configFromHF, type ModelConfig } from './config.ts';
import { hfTensorSpecs, isGpt2Buffer, normalizeHFNames, validateHF } from './architectures/index.ts';
import { validateShapes } from './architectures/common.ts';
import { readGpt2Onnx } from '../io/onnx-read.ts';
import { SAFETENSORS_INDEX_NAME, readSafetensors, readShardedSafetensors } from '../io/safetensors.ts';
import type { StateDict } from './state-dict.ts';

/** A loaded checkpoint. */
export interface LoadedCheckpoint {
  config: ModelConfig;
  /** HF-native names (prefix stripped for GPT-2), validated against `config`. */
  stateDict: StateDict;
  format: 'safetensors' | 'onnx';
  /** Absolute paths of every file read (config first). */
  files: string[];
}

/** Weight files searched for, relative to the checkpoint folder, in order. */
export const WEIGHT_CANDIDATES = ['model.safetensors', SAFETENSORS_INDEX_NAME, 'onnx/model.onnx', 'onnx/decoder_model.onnx'] as const;

/** Buffers some checkpoints store beside the weights (GPT-2 masks, NeoX / Llama rotary buffers). */
const BUFFER_RE = /\.(attention\.(bias|masked_bias)|rotary_emb\.inv_freq)$/;

/** Whether a raw tensor name is a buffer we skip (before decoding it). */
export function isIgnoredBuffer(name: string): boolean {
  return isGpt2Buffer(name) || BUFFER_RE.test(name);
}

/**
 * Map raw checkpoint names to native ones for the config's architecture: strip a GPT-2
 * `transformer.` prefix, drop buffers, and resolve a tied unembedding stored twice (dropped when
 * equal to the embedding, used as the embedding when that is absent, an error when it differs).
 * @param source file name for error messages.
 */
export function normalizeStateDict(raw: StateDict, source: string, cfg?: ModelConfig): StateDict {
  // Without a config: GPT-2, whose name mapping does not depend on sizes.
  return normalizeHFNames(raw, cfg ?? GPT2_NAMES, source);
}

const GPT2_NAMES = { nLayers: 1, nHeads: 1, dModel: 1, dHead: 1, dMlp: 1, nCtx: 1, dVocab: 1, eps: 1e-5, act: 'gelu_new' } as const;

/** Validate, adding which tensors were not recognised when some are missing (helps with odd prefixes). */
function validateWithHint(validate: () => void, source: string, unrecognised: string[]): void {
  try {
    validate();
  } catch (e) {
    let msg = `${source}: ${(e as Error).message}`;
    if (unrecognised.length) {
      const show = unrecognised.slice(0, 8).join(', ');
      msg += `\n  (unrecognised tensors in the file: ${show}${unrecognised.length > 8 ? `, ... ${unrecognised.length - 8} more` : ''})`;
    }
    throw new Error(msg);
  }
}

/**
 * Check tensors known by their header shapes (native names) against config.json, with the same
 * named errors as {@link loadCheckpoint} (missing tensor, wrong shape, unrecognised names).
 */
export function validateNativeShapes(shapes: Map<string, readonly number[]>, cfg: ModelConfig, source: string): void {
  validateWithHint(() => validateShapes(shapes, hfTensorSpecs(cfg)), source, unrecognisedNames([...shapes.keys()], cfg));
}

/** Parse `<dir>/config.json` into a validated config (named errors: absent, bad JSON, bad fields). */
export async function readCheckpointConfig(dir: string): Promise<{ config: ModelConfig; path: string }> {
  const path = resolve(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Error(`${dir}: no config.json found (looked for ${path})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
  try {
    return { config: configFromHF(raw), path };
  } catch (e) {
    // configFromHF names "config.json" itself; here the full path replaces it, once.
    throw new Error(`${path}: ${(e as Error).message.replace(/^config\.json: /, '')}`);
  }
}

/** Names the validator will not look at, for the error hint. */
function unrecognisedNames(names: string[], cfg: ModelConfig): string[] {
  // Names of any layer count are recognised, so a config with too few layers shows no noise here.
  const pattern = (n: string) => n.replace(/\.\d+\./g, '.#.');
  const known = new Set([...hfTensorSpecs(cfg).keys()].map(pattern));
  return names.filter((k) => !known.has(pattern(k)));
}

/** The first of {@link WEIGHT_CANDIDATES} present in `root`, or a named error listing them. */
export function findWeights(root: string): (typeof WEIGHT_CANDIDATES)[number] {
  const found = WEIGHT_CANDIDATES.find((c) => existsSync(join(root, c)));
  if (found) return found;
  // PyTorch pickles cannot be read safely from JS; say so instead of only "not found".
  const hint = existsSync(join(root, 'pytorch_model.bin'))
    ? '; pytorch_model.bin is present but is a PyTorch pickle relp cannot read: convert it to model.safetensors'
    : '';
  throw new Error(`${root}: no weights found (looked for ${WEIGHT_CANDIDATES.join(', ')})${hint}`);
}

/**
 * Load config.json and weights from a checkpoint folder. Throws (before returning anything)
 * for a missing config, no weights file (listing what was looked for), missing or misshapen
 * tensors, unsupported dtypes, truncated files and missing shards.
 */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const root = resolve(dir);
  const { config, path: configPath } = await readCheckpointConfig(root);
  const found = findWeights(root);
  const weightPath = join(root, found);
  const keep = (name: string) => !isIgnoredBuffer(name);
  let raw: StateDict;
  let files: string[];
  let unrecognised: string[] = [];
  let format: LoadedCheckpoint['format'];
  if (found.startsWith('onnx/') && config.modelType !== 'gpt2') {
    throw new Error(`${weightPath}: ONNX checkpoints are read for gpt2 only; this model_type is ${config.modelType} (use model.safetensors)`);
  }
  if (found === 'model.safetensors') {
    raw = readSafetensors(weightPath, { filter: keep });
    files = [weightPath];
    format = 'safetensors';
  } else if (found === SAFETENSORS_INDEX_NAME) {
    const r = readShardedSafetensors(weightPath, { filter: keep });
    raw = r.tensors;
    files = [weightPath, ...r.files];
    format = 'safetensors';
  } else {
    const r = readGpt2Onnx(weightPath);
    raw = r.tensors;
    files = [weightPath];
    format = 'onnx';
    unrecognised = r.unmapped.map((u) => `${u.name} [${u.shape.join(', ')}]`);
  }
  const stateDict = normalizeStateDict(raw, weightPath, config);
  unrecognised = [...unrecognisedNames([...stateDict.keys()], config), ...unrecognised];
  validateWithHint(() => validateHF(stateDict, config), weightPath, unrecognised);
  return { config, stateDict, format, files: [configPath, ...files] };
}
