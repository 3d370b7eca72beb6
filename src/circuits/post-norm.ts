/**
 * Edge circuits on models with post-norms (Gemma-2: `ln1_post` after the attention, `ln2_post`
 * after the MLP), in MIB's convention:
 *
 * - node outputs are contributions before the post-norm: head (l, h) = z_h·W_O[h]
 *   (`attn.hook_result`[:, :, h]), MLP l = the MLP's output before `ln2_post` (the norm's input,
 *   read as `ln2_post.hook_normalized · ln2_post.hook_scale`), the input node the (scaled) embedding;
 * - the post-norm belongs to the reading side: target t's input is
 *     emb_t + Σ_{l'} [PN1_{l'}(Σ_h a^t_{l',h} + b_O) + PN2_{l'}(m^t_{l'})],
 *   with a^t, m^t the values t sees (the source values on its patched edges, the live ones
 *   otherwise). A graph forward computes it as the live residual plus, per upstream layer and
 *   norm, PN(S + Δ_t) − PN(S), with S the live pre-norm sum and Δ_t = Σ_u coef(u → t)·(src(u) − live(u)).
 *   Patching every edge gives the clean run, patching none the corrupt run;
 * - the gradient of a target's input reaches a node u of layer l' through the norm's Jacobian:
 *   score(u → t) = Δa_u · J_{PN}(S_{l'})ᵀ ∂m/∂in_t. For y = γ·x/r, r = √(mean(x²) + eps),
 *   Jᵀg = (γ⊙g − n·⟨γ⊙g, n⟩/d) / r with n = x/r, and Jᵀg = γ⊙g / r when the scale is a constant
 *   (the LN-rule, or a hook on the scale: see {@link postNormScaleHook}).
 *
 * γ = 1 + w (Gemma's RMSNorm) or w (RMSNorm), read from the resident weights (`blocks.{l}.ln1_post.w`,
 * `ln2_post.w`); streamed models keep them on disk and are refused.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { CompiledHooks, Hook } from '../hooks/hook-point.ts';

/** Which post-norm: 1 after the attention (`ln1_post`), 2 after the MLP (`ln2_post`). */
export type PostNormKind = 1 | 2;

/**
 * Name of the graph hook on a post-norm's scale as the reading targets see it:
 * `blocks.{l}.ln{1|2}_post.hook_scale_targets`, [batch, pos, 1 + T, 1]. Slot 0 is the scale of the
 * live pre-norm sum, slot 1 + i that of target i's sum (T targets of one kind in the reading layer).
 * It is a graph hook (GraphForwardOptions.graphHooks), not a model hook; a hooked scale counts as a
 * constant in the gradient (as frozen scales are).
 */
export function postNormScaleHook(l: number, kind: PostNormKind): string {
  return `blocks.${l}.ln${kind}_post.hook_scale_targets`;
}

const SCALE_HOOK_RE = /^blocks\.\d+\.ln[12]_post\.hook_scale_targets$/;

/** Split graph hooks into those the circuit code runs itself (post-norm scales) and the model's. */
export function splitGraphHooks(hooks: Hook[] | undefined): { own: Hook[]; model: Hook[] } {
  const own: Hook[] = [];
  const model: Hook[] = [];
  for (const h of hooks ?? []) (SCALE_HOOK_RE.test(h.name) ? own : model).push(h);
  return { own, model };
}

/** Throw unless the post-norms of `model` can be handled (RMS norms, gains on the heap). */
export function checkPostNorms(model: HookedTransformer): void {
  const cfg = model.cfg;
  if (cfg.normType === 'layernorm') throw new Error(`edge circuits handle RMS post-norms only; ${cfg.modelType} has LayerNorm post-norms`);
  if (model.execution === 'streamed') {
    throw new Error(`edge circuits on ${cfg.modelType} need its post-norm gains on the heap; load the model whole (--no-stream-weights) to find circuits`);
  }
}

/** γ of post-norm `kind` of layer l, [d] (1 + w for Gemma's RMSNorm). Created in the caller's scope. */
export function postNormGain(model: HookedTransformer, l: number, kind: PostNormKind): tf.Tensor1D {
  const w = model.params.get(`blocks.${l}.ln${kind}_post.w`);
  if (!w) throw new Error(`internal: blocks.${l}.ln${kind}_post.w is missing`);
  return (model.cfg.normType === 'gemma-rmsnorm' ? tf.add(w, 1) : w) as tf.Tensor1D;
}

/** The model's hooks that hold a post-norm's input: its scale and normalised value ([b, p, 1], [b, p, d]). */
export function postNormInputHooks(l: number, kind: PostNormKind): [string, string] {
  return [`blocks.${l}.ln${kind}_post.hook_scale`, `blocks.${l}.ln${kind}_post.hook_normalized`];
}

/** A scale runner: the graph hook at `name` when there is one, else undefined. */
export type ScaleHook = ((r: tf.Tensor) => tf.Tensor) | undefined;

/** The runner of the graph hooks at `name` (undefined when none is there). */
export function scaleHookOf(own: CompiledHooks | undefined, name: string): ScaleHook {
  return own?.has(name) ? (r) => own.run(name, r) : undefined;
}

/**
 * The post-norm of sums X [GB, p, 1 + T, d] (slot 0 the live sum, slots 1.. each target's): γ·X/r
 * with r = √(mean(X²) + eps) through the scale hook, minus slot 0: the correction
 * PN(S + Δ_t) − PN(S) of every target, [GB, p, T, d]. Exactly 0 where Δ_t = 0.
 */
export function postNormCorrection(X: tf.Tensor, gain: tf.Tensor1D, eps: number, hook: ScaleHook): tf.Tensor {
  const [gb, p, T1, d] = X.shape as number[];
  let r = tf.sqrt(tf.add(tf.mean(tf.square(X), -1, true), eps)); // [GB, p, 1 + T, 1]
  if (hook) r = hook(r);
  const Y = tf.mul(tf.div(X, r), gain); // the model's order: (x / scale) · gain
  return tf.sub(tf.slice(Y, [0, 0, 1, 0], [gb, p, T1 - 1, d]), tf.slice(Y, [0, 0, 0, 0], [gb, p, 1, d]));
}

/**
 * Jᵀg of the post-norm at the live sum S [B, p, d] for the gradients g [B, p, T, d] of T targets:
 * (γ⊙g − n·⟨γ⊙g, n⟩/d) / r, n = S/r; γ⊙g / r when `constScale` (LN-rule) or the scale is hooked
 * (the hook sees [B, p, 1 + T, 1], every slot the scale of S; slots 1.. are the targets').
 */
export function postNormVjp(g: tf.Tensor, S: tf.Tensor, gain: tf.Tensor1D, eps: number, constScale: boolean, hook: ScaleHook): tf.Tensor {
  const [B, P, T, D] = g.shape as number[];
  const r0 = tf.expandDims(tf.sqrt(tf.add(tf.mean(tf.square(S), -1, true), eps)), 2); // [B, p, 1, 1]
  const gg = tf.mul(g, gain); // [B, p, T, d]
  if (hook) {
    const r = tf.slice(hook(tf.tile(r0, [1, 1, T + 1, 1])), [0, 0, 1, 0], [B, P, T, 1]);
    return tf.div(gg, r);
  }
  if (constScale) return tf.div(gg, r0);
  const n = tf.div(tf.expandDims(S, 2), r0); // [B, p, 1, d]
  const dot = tf.sum(tf.mul(gg, n), -1, true); // [B, p, T, 1]
  return tf.div(tf.sub(gg, tf.mul(n, tf.div(dot, D))), r0);
}
