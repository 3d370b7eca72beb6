/**
 * Hooks that make a model affine around the corrupt run: norm scales (post-norms included), the
 * MLP non-linearity (GELU ratios act(x)/x; for gated MLPs the gate's activation act(gate)) and
 * (optionally) attention patterns are frozen at the corrupt run's values. Gemma-2's final logit
 * soft-cap comes after the last hook and cannot be frozen: linearise a model without it. Frozen tensors are
 * tiled when a sweep stacks several patch groups along the batch axis, and sliced to the last
 * position when a sweep unembeds only that one.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import type { Hook } from '../../src/hooks/hook-point.ts';
import type { ActivationCache } from '../../src/hooks/activation-cache.ts';
import type { PatchingData } from '../../src/patching/data.ts';
import { activation } from '../../src/models/parts/activations.ts';

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

/** The corrupt-run hook names a freeze reads. */
function frozenNames(model: HookedTransformer): string[] {
  const { nLayers: L, postNorms, mlpKind } = model.cfg;
  const names: string[] = ['ln_final.hook_scale'];
  for (let l = 0; l < L; l++) {
    const b = `blocks.${l}.`;
    names.push(`${b}ln1.hook_scale`, `${b}ln2.hook_scale`, `${b}mlp.hook_pre`, `${b}mlp.hook_post`, `${b}attn.hook_pattern`);
    if (mlpKind === 'gated') names.push(`${b}mlp.hook_pre_linear`);
    if (postNorms) names.push(`${b}ln1_post.hook_scale`, `${b}ln2_post.hook_scale`);
  }
  return names;
}

/**
 * Hooks making each MLP affine in its input. Plain MLPs: post = pre · (act(pre_c) / pre_c) (the
 * GELU ratio of the corrupt run). Gated MLPs, post = act(gate) ⊙ up: the gate's activation is
 * frozen at the corrupt run, post = act(gate_c) ⊙ up (freezing act(gate)/gate instead would leave
 * the product gate ⊙ up, which is quadratic).
 */
function mlpHooks(model: HookedTransformer, cache: ActivationCache, tiled: FrozenRun['tiled']): { hooks: Hook[]; ratio: tf.Tensor[] } {
  const gated = model.cfg.mlpKind === 'gated';
  const ratio: tf.Tensor[] = [];
  const live: tf.Tensor[] = [];
  const hooks: Hook[] = [];
  for (let l = 0; l < model.cfg.nLayers; l++) {
    const b = `blocks.${l}.mlp.`;
    // The frozen factor: act(pre_c)/pre_c (plain) or act(gate_c) (gated).
    ratio.push(gated ? tf.tidy(() => activation(model.cfg.act)(cache[`${b}hook_pre`])) : tf.div(cache[`${b}hook_post`], cache[`${b}hook_pre`]));
    const factor = gated ? `${b}hook_pre_linear` : `${b}hook_pre`;
    hooks.push({ name: factor, fn: (x) => void (live[l] = x) });
    hooks.push({ name: `${b}hook_post`, fn: (x) => tf.mul(live[l], tiled(ratio[l], x)) });
  }
  return { hooks, ratio };
}

export function freezeAtCorrupt(model: HookedTransformer, data: PatchingData, opts: FreezeOptions = {}): FrozenRun {
  const L = model.cfg.nLayers;
  const patterns = opts.patterns ?? (() => true);
  const names = frozenNames(model);
  const { cache, logits } = model.runWithCache(data.corrupt, { names });
  logits.dispose();
  const B = data.corrupt.length;
  const tiled = (t: tf.Tensor, x: tf.Tensor) => (x.shape[0] === B ? t : tf.tile(t, [x.shape[0] / B, ...Array(t.rank - 1).fill(1)]));
  const hooks: Hook[] = [];
  const scales = names.filter((n) => n.endsWith('hook_scale') && (opts.ln1 !== false || !n.endsWith('ln1.hook_scale')));
  for (const n of scales) {
    // ln_final sees only the last position when sweeps unembed just that one.
    hooks.push({ name: n, fn: (x) => (x.shape[1] === cache[n].shape[1] ? tiled(cache[n], x) : tf.slice(tiled(cache[n], x), [0, data.pos - 1, 0], [-1, 1, -1])) });
  }
  const mlp = mlpHooks(model, cache, tiled);
  hooks.push(...mlp.hooks);
  for (let l = 0; l < L; l++) {
    if (patterns(l)) hooks.push({ name: `blocks.${l}.attn.hook_pattern`, fn: (x) => tiled(cache[`blocks.${l}.attn.hook_pattern`], x) });
  }
  return { hooks, cache, tiled, dispose: () => [...Object.values(cache), ...mlp.ratio].forEach((t) => t.dispose()) };
}
