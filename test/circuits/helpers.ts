/**
 * Shared fixtures of the circuit tests: a tiny random model, random prompt pairs, and hooks that
 * make the graph forward affine around the corrupt run (every norm scale, MLP non-linearity and
 * attention pattern frozen at the corrupt run's values).
 */
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import type { Hook } from '../../src/hooks/hook-point.ts';
import { configFromHF, type BaseConfig } from '../../src/models/config.ts';
import { randomStateDict, type StateDict } from '../../src/models/state-dict.ts';
import { toPatchingData, type PatchingData } from '../../src/patching/data.ts';
import type { PromptPair } from '../../src/tasks/types.ts';
import { randomPairs as randomPairsOf } from '../helpers/random-pairs.ts';
import { freezeAtCorrupt as freezeModel } from '../helpers/freeze.ts';
import { postNormScaleHook } from '../../src/circuits/post-norm.ts';

export const cfg: BaseConfig = configFromHF({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 23 });

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
 * Freeze every non-linearity at the corrupt run's values: model hooks (LN2, post-norm and final
 * norm scales, the MLP non-linearity, attention patterns; test/helpers/freeze.ts) and graph hooks
 * (the per-head LN1 scales, and with post-norms each reading target's post-norm scale,
 * src/circuits/post-norm.ts). Frozen tensors are tiled to the stacked batch (patch groups, kv copies)
 * and to the heads or targets of the hooked tensor.
 */
export function freezeAtCorrupt(model: HookedTransformer, data: PatchingData): { hooks: Hook[]; graphHooks: Hook[]; dispose: () => void } {
  // LN1 is frozen per head by the graph forward, not by the model's own hook.
  const frozen = freezeModel(model, data, { ln1: false });
  const B = data.corrupt.length;
  // A [B, p, 1] scale broadcast to x [n·B, p, k, 1].
  const spread = (s: tf.Tensor, x: tf.Tensor) => tf.tile(tf.expandDims(s, 2), [x.shape[0] / B, 1, x.shape[2] as number, 1]);
  const graphHooks: Hook[] = [];
  for (let l = 0; l < model.cfg.nLayers; l++) {
    for (const i of ['q', 'k', 'v']) {
      // The per-head scale [GB, p, H or KV, 1]: every head's input equals resid_pre on the corrupt run.
      graphHooks.push({ name: `blocks.${l}.ln1.hook_scale_${i}`, fn: (x) => spread(frozen.cache[`blocks.${l}.ln1.hook_scale`], x) });
    }
    if (!model.cfg.postNorms) continue;
    for (const k of [1, 2] as const) {
      graphHooks.push({ name: postNormScaleHook(l, k), fn: (x) => spread(frozen.cache[`blocks.${l}.ln${k}_post.hook_scale`], x) });
    }
  }
  return { hooks: frozen.hooks, graphHooks, dispose: frozen.dispose };
}
