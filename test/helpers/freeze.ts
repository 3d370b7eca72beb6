/**
 * Hooks that make a model affine around the corrupt run: LayerNorm scales, GELU ratios act(x)/x
 * and (optionally) attention patterns are frozen at the corrupt run's values. Frozen tensors are
 * tiled when a sweep stacks several patch groups along the batch axis, and sliced to the last
 * position when a sweep unembeds only that one.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import type { Hook } from '../../src/hooks/hook-point.ts';
import type { ActivationCache } from '../../src/hooks/activation-cache.ts';
import type { PatchingData } from '../../src/patching/data.ts';

/** Options of {@link freezeAtCorrupt}. */
export interface FreezeOptions {
  /** Freeze the attention pattern of layer l (default: every layer). */
  patterns?: (l: number) => boolean;
  /** Freeze blocks.{l}.ln1.hook_scale with a model hook (default true; graph forwards freeze it per head). */
  ln1?: boolean;
}

/** Frozen-run hooks plus what callers need to build more of them. */
export interface FrozenRun {
  hooks: Hook[];
  /** The corrupt run's LN scales, MLP pre/post activations and patterns. */
  cache: ActivationCache;
  /** Tile a frozen [B, ...] tensor to an activation's stacked batch. */
  tiled: (t: tf.Tensor, x: tf.Tensor) => tf.Tensor;
  dispose: () => void;
}

export function freezeAtCorrupt(model: HookedTransformer, data: PatchingData, opts: FreezeOptions = {}): FrozenRun {
  const L = model.cfg.nLayers;
  const patterns = opts.patterns ?? (() => true);
  const names: string[] = ['ln_final.hook_scale'];
  for (let l = 0; l < L; l++) names.push(`blocks.${l}.ln1.hook_scale`, `blocks.${l}.ln2.hook_scale`, `blocks.${l}.mlp.hook_pre`, `blocks.${l}.mlp.hook_post`, `blocks.${l}.attn.hook_pattern`);
  const { cache, logits } = model.runWithCache(data.corrupt, { names });
  logits.dispose();
  const B = data.corrupt.length;
  const tiled = (t: tf.Tensor, x: tf.Tensor) => (x.shape[0] === B ? t : tf.tile(t, [x.shape[0] / B, ...Array(t.rank - 1).fill(1)]));
  const ratio: tf.Tensor[] = [];
  for (let l = 0; l < L; l++) ratio.push(tf.div(cache[`blocks.${l}.mlp.hook_post`], cache[`blocks.${l}.mlp.hook_pre`]));
  const pre: tf.Tensor[] = [];
  const hooks: Hook[] = [];
  const scales = names.filter((n) => n.endsWith('hook_scale') && (opts.ln1 !== false || !n.endsWith('ln1.hook_scale')));
  for (const n of scales) {
    // ln_final sees only the last position when sweeps unembed just that one.
    hooks.push({ name: n, fn: (x) => (x.shape[1] === cache[n].shape[1] ? tiled(cache[n], x) : tf.slice(tiled(cache[n], x), [0, data.pos - 1, 0], [-1, 1, -1])) });
  }
  for (let l = 0; l < L; l++) {
    hooks.push({ name: `blocks.${l}.mlp.hook_pre`, fn: (x) => void (pre[l] = x) });
    hooks.push({ name: `blocks.${l}.mlp.hook_post`, fn: (x) => tf.mul(pre[l], tiled(ratio[l], x)) });
    if (patterns(l)) hooks.push({ name: `blocks.${l}.attn.hook_pattern`, fn: (x) => tiled(cache[`blocks.${l}.attn.hook_pattern`], x) });
  }
  return { hooks, cache, tiled, dispose: () => [...Object.values(cache), ...ratio].forEach((t) => t.dispose()) };
}
