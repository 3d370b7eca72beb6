/**
 * Load a GPT-2 checkpoint folder (HF layout) into a validated config + state dict.
 *
 * Looked for, in order: `model.safetensors`, `model.safetensors.index.json` (sharded),
 * `onnx/model.onnx`, `onnx/decoder_model.onnx` (transformers.js layout). The result is pure
 * data and fully checked against config.json before it is returned.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { configFromHF, type GPT2Config } from './config.ts';
import { readGpt2Onnx } from './onnx-read.ts';
import { SAFETENSORS_INDEX_NAME, readSafetensors, readShardedSafetensors } from './safetensors.ts';
import { validateStateDict, type NamedArray, type StateDict } from './state-dict.ts';

/** A loaded checkpoint. */
export interface LoadedCheckpoint {
  config: GPT2Config;
  /** Canonical names, validated against `config`. */
  stateDict: StateDict;
  format: 'safetensors' | 'onnx';
  /** Absolute paths of every file read (config first). */
  files: string[];
}

/** Weight files searched for, relative to the checkpoint folder, in order. */
export const WEIGHT_CANDIDATES = ['model.safetensors', SAFETENSORS_INDEX_NAME, 'onnx/model.onnx', 'onnx/decoder_model.onnx'] as const;

/** Buffers some GPT-2 checkpoints store alongside the weights (causal mask, masked fill value). */
const BUFFER_RE = /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/;

function sameArray(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/** Whether a raw tensor name is a buffer we skip (before decoding it). */
export function isIgnoredBuffer(name: string): boolean {
  return BUFFER_RE.test(name);
}

/**
 * Map raw checkpoint names to canonical ones: strip a `transformer.` prefix, drop attention
 * buffers, and resolve the tied `lm_head.weight` (dropped when equal to `wte.weight`, used as
 * `wte.weight` when that is absent, an error when it differs).
 * @param source file name for error messages.
 */
export function normalizeStateDict(raw: StateDict, source: string): StateDict {
  const out: StateDict = new Map();
  let lmHead: NamedArray | undefined;
  for (const [name, t] of raw) {
    if (isIgnoredBuffer(name)) continue;
    const canon = name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
    if (canon === 'lm_head.weight') {
      lmHead = t;
      continue;
    }
    if (out.has(canon)) throw new Error(`${source}: tensor "${canon}" appears both with and without the "transformer." prefix`);
    out.set(canon, t);
  }
  if (lmHead) {
    const wte = out.get('wte.weight');
    if (!wte) {
      out.set('wte.weight', lmHead);
    } else if (wte.shape.join() !== lmHead.shape.join() || !sameArray(wte.data, lmHead.data)) {
      throw new Error(
        `${source}: "lm_head.weight" differs from "wte.weight"; relp needs a tied unembedding (lm_head = wte)`,
      );
    }
  }
  return out;
}

/** Validate, adding which tensors were not recognised when some are missing (helps with odd prefixes). */
function validateWithHint(sd: StateDict, cfg: GPT2Config, source: string, unrecognised: string[]): void {
  try {
    validateStateDict(sd, cfg);
  } catch (e) {
    let msg = `${source}: ${(e as Error).message}`;
    if (unrecognised.length) {
      const show = unrecognised.slice(0, 8).join(', ');
      msg += `\n  (unrecognised tensors in the file: ${show}${unrecognised.length > 8 ? `, ... ${unrecognised.length - 8} more` : ''})`;
    }
    throw new Error(msg);
  }
}

async function readConfig(dir: string): Promise<{ config: GPT2Config; path: string }> {
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
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Names the validator will not look at, for the error hint. */
function unrecognisedNames(sd: StateDict): string[] {
  const canonical = /^(wte|wpe|ln_f)\.(weight|bias)$|^h\.\d+\.(ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.(weight|bias)$/;
  return [...sd.keys()].filter((k) => !canonical.test(k));
}

/**
 * Load config.json and weights from a checkpoint folder. Throws (before returning anything)
 * for a missing config, no weights file (listing what was looked for), missing or misshapen
 * tensors, unsupported dtypes, truncated files and missing shards.
 */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const root = resolve(dir);
  const { config, path: configPath } = await readConfig(root);
  const found = WEIGHT_CANDIDATES.find((c) => existsSync(join(root, c)));
  if (!found) {
    // PyTorch pickles cannot be read safely from JS; say so instead of only "not found".
    const hint = existsSync(join(root, 'pytorch_model.bin'))
      ? '; pytorch_model.bin is present but is a PyTorch pickle relp cannot read: convert it to model.safetensors'
      : '';
    throw new Error(`${root}: no weights found (looked for ${WEIGHT_CANDIDATES.join(', ')})${hint}`);
  }
  const weightPath = join(root, found);
  const keep = (name: string) => !isIgnoredBuffer(name);
  let raw: StateDict;
  let files: string[];
  let unrecognised: string[] = [];
  let format: LoadedCheckpoint['format'];
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
  const stateDict = normalizeStateDict(raw, weightPath);
  unrecognised = [...unrecognisedNames(stateDict), ...unrecognised];
  validateWithHint(stateDict, config, weightPath, unrecognised);
  return { config, stateDict, format, files: [configPath, ...files] };
}
