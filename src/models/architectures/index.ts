/**
 * The converter registry: one {@link Architecture} per HF `model_type`, and the entry points the
 * rest of relp uses (config parsing, HF tensor specs, native ↔ canonical conversion).
 */
import { MODEL_TYPES, resolveConfig, type ConfigInput, type ModelConfig, type ModelType } from '../config.ts';
import type { StateDict } from '../state-dict.ts';
import { validateTensors, type Architecture, type TensorSpec } from './common.ts';
import { GPT2 } from './gpt2.ts';
import { LLAMA } from './llama.ts';
import { NEOX } from './neox.ts';

export type { Architecture, TensorSpec } from './common.ts';
export { isGpt2Buffer } from './gpt2.ts';

const BY_TYPE = new Map<ModelType, Architecture>();
for (const a of [GPT2, NEOX, LLAMA]) for (const t of a.modelTypes) BY_TYPE.set(t, a);

/** The converter of a model type (a named error for unknown ones). */
export function architecture(modelType: string): Architecture {
  const a = BY_TYPE.get(modelType as ModelType);
  if (!a) throw new Error(`config.json: model_type "${modelType}" is not supported (supported: ${MODEL_TYPES.join(', ')})`);
  return a;
}

/**
 * Parse an HF `config.json` object into a {@link ModelConfig}. A missing `model_type` means gpt2
 * (older GPT-2 configs). Throws a clear error for missing fields, unsupported values or
 * inconsistent sizes (e.g. `num_key_value_heads` not dividing `num_attention_heads`).
 */
export function configFromHF(raw: unknown): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('config.json: expected a JSON object');
  const r = raw as Record<string, unknown>;
  const type = r.model_type === undefined ? 'gpt2' : r.model_type;
  if (typeof type !== 'string') throw new Error(`config.json: model_type must be a string, got ${JSON.stringify(type)}`);
  return architecture(type).parseConfig(r, type as ModelType);
}

/** HF `config.json` fields for a config. */
export function configToHF(cfg: ConfigInput): Record<string, unknown> {
  const c = resolveConfig(cfg);
  return architecture(c.modelType).configToHF(c);
}

/** Every HF-native tensor of a config with its shape and kind, in a fixed order. */
export function hfTensorSpecs(cfg: ConfigInput): Map<string, TensorSpec> {
  const c = resolveConfig(cfg);
  return architecture(c.modelType).hfTensors(c);
}

/** Map raw checkpoint names to the native ones (prefixes, buffers, a tied head stored twice). */
export function normalizeHFNames(raw: StateDict, cfg: ConfigInput, source: string): StateDict {
  const c = resolveConfig(cfg);
  return architecture(c.modelType).normalizeNames(raw, c, source);
}

/** Validate an HF-native state dict (named errors: missing tensor, wrong shape). */
export function validateHF(sd: StateDict, cfg: ConfigInput): void {
  validateTensors(sd, hfTensorSpecs(cfg));
}

/** HF-native (validated here) → canonical split weights. */
export function hfToCanonical(cfg: ConfigInput, sd: StateDict): StateDict {
  const c = resolveConfig(cfg);
  validateHF(sd, c);
  return architecture(c.modelType).toCanonical(c, sd);
}

/** Canonical → HF-native (for saving in HF layout). */
export function canonicalToHF(cfg: ConfigInput, w: StateDict): StateDict {
  const c = resolveConfig(cfg);
  return architecture(c.modelType).fromCanonical(c, w);
}
