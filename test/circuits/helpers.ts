/**
 * Shared fixtures of the circuit tests: a tiny random model, random prompt pairs, and hooks that
 * make the graph forward affine around the corrupt run (every LayerNorm scale, GELU ratio and
 * attention pattern frozen at the corrupt run's values).
 */
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import type { Hook } from '../../src/hooks/hook-point.ts';
import { configFromHF, type GPT2Config } from '../../src/models/config.ts';
import { randomStateDict, type StateDict } from '../../src/models/state-dict.ts';
import { toPatchingData, type PatchingData } from '../../src/patching/data.ts';
import type { PromptPair } from '../../src/tasks/types.ts';
import { randomPairs as randomPairsOf } from '../helpers/random-pairs.ts';
import { freezeAtCorrupt as freezeModel } from '../helpers/freeze.ts';

export const cfg: GPT2Config = configFromHF({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 23 });

export function tinyModel(seed = 5): { model: HookedTransformer; sd: StateDict } {
  const sd = randomStateDict(cfg, { seed, std: 0.3, biasStd: 0.1 });
  return { model: HookedTransformer.fromStateDict(cfg, sd), sd };
}

export function randomPairs(n: number, pos: number, seed: number): PromptPair[] {
  return randomPairsOf(n, pos, seed, cfg.dVocab);
}

export function tinyData(n = 3, pos = 5, seed = 17): PatchingData {
  return toPatchingData(randomPairs(n, pos, seed));
}

/**
 * Freeze every non-linearity at the corrupt run's values: model hooks (LN2 and final LN scales,
 * GELU ratio act(x)/x, attention patterns) and graph hooks (the per-head LN1 scales). Frozen
 * tensors are tiled when several patch groups share a forward.
 */
export function freezeAtCorrupt(model: HookedTransformer, data: PatchingData): { hooks: Hook[]; graphHooks: Hook[]; dispose: () => void } {
  // LN1 is frozen per head by the graph forward, not by the model's own hook.
  const frozen = freezeModel(model, data, { ln1: false });
  const H = model.cfg.nHeads;
  const graphHooks: Hook[] = [];
  for (let l = 0; l < model.cfg.nLayers; l++) {
    for (const i of ['q', 'k', 'v']) {
      // The per-head scale [GB, p, H, 1]: every head's input equals resid_pre on the corrupt run.
      graphHooks.push({ name: `blocks.${l}.ln1.hook_scale_${i}`, fn: (x) => frozen.tiled(tf.tile(tf.expandDims(frozen.cache[`blocks.${l}.ln1.hook_scale`], 2), [1, 1, H, 1]), x) });
    }
  }
  return { hooks: frozen.hooks, graphHooks, dispose: frozen.dispose };
}
