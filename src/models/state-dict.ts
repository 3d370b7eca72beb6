/**
 * Framework-free weights in the canonical HF GPT-2 layout (no `transformer.` prefix).
 *
 * Names and shapes (Conv1D weights are stored [in, out], as in HF):
 * - `wte.weight` [dVocab, dModel], `wpe.weight` [nCtx, dModel]
 * - `h.{l}.ln_1.weight|bias` [dModel], `h.{l}.ln_2.weight|bias` [dModel]
 * - `h.{l}.attn.c_attn.weight` [dModel, 3*dModel], `h.{l}.attn.c_attn.bias` [3*dModel]
 * - `h.{l}.attn.c_proj.weight` [dModel, dModel], `h.{l}.attn.c_proj.bias` [dModel]
 * - `h.{l}.mlp.c_fc.weight` [dModel, dMlp], `h.{l}.mlp.c_fc.bias` [dMlp]
 * - `h.{l}.mlp.c_proj.weight` [dMlp, dModel], `h.{l}.mlp.c_proj.bias` [dModel]
 * - `ln_f.weight|bias` [dModel]
 * The unembedding is tied to `wte.weight`.
 */
import type { GPT2Config } from './config.ts';

/** A dense float32 array with its shape (row-major). */
export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

/** Canonical GPT-2 weights keyed by HF name without prefix. */
export type StateDict = Map<string, NamedArray>;

/** The exact set of names and shapes a GPT-2 of this config needs. */
export function expectedShapes(cfg: GPT2Config): Map<string, number[]> {
  const d = cfg.dModel;
  const m = new Map<string, number[]>();
  m.set('wte.weight', [cfg.dVocab, d]);
  m.set('wpe.weight', [cfg.nCtx, d]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `h.${l}.`;
    m.set(p + 'ln_1.weight', [d]);
    m.set(p + 'ln_1.bias', [d]);
    m.set(p + 'attn.c_attn.weight', [d, 3 * d]);
    m.set(p + 'attn.c_attn.bias', [3 * d]);
    m.set(p + 'attn.c_proj.weight', [d, d]);
    m.set(p + 'attn.c_proj.bias', [d]);
    m.set(p + 'ln_2.weight', [d]);
    m.set(p + 'ln_2.bias', [d]);
    m.set(p + 'mlp.c_fc.weight', [d, cfg.dMlp]);
    m.set(p + 'mlp.c_fc.bias', [cfg.dMlp]);
    m.set(p + 'mlp.c_proj.weight', [cfg.dMlp, d]);
    m.set(p + 'mlp.c_proj.bias', [d]);
  }
  m.set('ln_f.weight', [d]);
  m.set('ln_f.bias', [d]);
  return m;
}

/**
 * Check a state dict against a config. Throws one error listing every missing tensor (by name)
 * and every wrong shape (expected vs got). Extra tensors are ignored.
 */
export function validateStateDict(sd: StateDict, cfg: GPT2Config): void {
  const problems: string[] = [];
  for (const [name, shape] of expectedShapes(cfg)) {
    const t = sd.get(name);
    if (!t) {
      problems.push(`missing tensor "${name}" (expected shape [${shape.join(', ')}])`);
      continue;
    }
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      problems.push(`tensor "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    } else if (t.data.length !== shape.reduce((a, b) => a * b, 1)) {
      problems.push(`tensor "${name}" holds ${t.data.length} values, expected ${shape.reduce((a, b) => a * b, 1)}`);
    }
  }
  if (problems.length) {
    throw new Error(`weights do not match config.json:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Deterministic PRNG (mulberry32) so random models are reproducible from a seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options for {@link randomStateDict}. */
export interface RandomInitOptions {
  seed?: number;
  /** Std of normal init for matrices (GPT-2 uses 0.02). */
  std?: number;
  /** Std for biases and LN offsets; 0 gives zero biases (used in conservation tests). */
  biasStd?: number;
  /** Std of the deviation of LN gains from 1. */
  lnGainStd?: number;
}

/** A GPT-2 with random weights, deterministic from `seed`. */
export function randomStateDict(cfg: GPT2Config, opts: RandomInitOptions = {}): StateDict {
  const rand = mulberry32(opts.seed ?? 0);
  const std = opts.std ?? 0.02;
  const biasStd = opts.biasStd ?? 0.02;
  const lnGainStd = opts.lnGainStd ?? 0.1;
  const normal = () => {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const sd: StateDict = new Map();
  for (const [name, shape] of expectedShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isLnGain = /ln_(1|2|f)\.weight$/.test(name);
    const isBias = name.endsWith('.bias');
    for (let i = 0; i < n; i++) {
      if (isLnGain) data[i] = 1 + lnGainStd * normal();
      else if (isBias) data[i] = biasStd * normal();
      else data[i] = std * normal();
    }
    sd.set(name, { shape, data });
  }
  return sd;
}
