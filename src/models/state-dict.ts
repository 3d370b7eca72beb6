/**
 * Framework-free weights: a map from tensor name to a float32 array with its shape.
 *
 * Two layouts use it: HF-native checkpoints (names as the architecture's converter lists them,
 * see src/models/architectures/) and canonical split weights (src/models/canonical.ts).
 * {@link randomStateDict} writes a random HF-native checkpoint of any supported architecture.
 */
import type { ConfigInput } from './config.ts';
import { hfTensorSpecs, validateHF } from './architectures/index.ts';

import type { StateDict } from '../io/tensors.ts';

export type { NamedArray, StateDict } from '../io/tensors.ts';

/** The exact set of HF-native names and shapes a checkpoint of this config needs. */
export function expectedShapes(cfg: ConfigInput): Map<string, number[]> {
  return new Map([...hfTensorSpecs(cfg)].map(([n, s]) => [n, s.shape]));
}

/**
 * Check an HF-native state dict against a config. Throws one error listing every missing tensor
 * (by name) and every wrong shape (expected vs got). Extra tensors are ignored.
 */
export function validateStateDict(sd: StateDict, cfg: ConfigInput): void {
  validateHF(sd, cfg);
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

/** A random HF-native checkpoint of `cfg`'s architecture, deterministic from `seed`. */
export function randomStateDict(cfg: ConfigInput, opts: RandomInitOptions = {}): StateDict {
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
  for (const [name, { shape, kind }] of hfTensorSpecs(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (kind === 'normGain') data[i] = 1 + lnGainStd * normal();
      else if (kind === 'normGainZero') data[i] = lnGainStd * normal(); // Gemma's norm multiplies by (1 + w)
      else if (kind === 'bias') data[i] = biasStd * normal();
      else data[i] = std * normal();
    }
    sd.set(name, { shape, data });
  }
  return sd;
}
