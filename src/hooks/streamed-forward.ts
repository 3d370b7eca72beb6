/**
 * Forward and block-wise backward of a streamed model (weights on disk, one block uploaded at a
 * time; see streamed-weights.ts).
 *
 * Autodiff across the whole model would keep every block's weights alive until the backward ends.
 * Instead the forward keeps only the residual stream at block boundaries (and the activations a
 * caller caches); then for l = L−1 … 0 it re-uploads block l, recomputes it from its saved input
 * and takes its vector–Jacobian product with the upstream gradient. LRP rules live inside the
 * block's ops, so RelP's modified gradients come out of the same code.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../models/config.ts';
import { embed, finalInput, finalNorm, runBlock, softcapLogits, type ForwardInternals } from '../models/forward.ts';
import type { RotaryTables } from '../models/parts/rotary.ts';
import type { RuleSet } from '../rules/rules.ts';
import { compileHooks, type Hook } from './hook-point.ts';
import { hookShape } from './hook-points.ts';
import type { ActivationCache } from './activation-cache.ts';
import { onTape, type StreamedWeights, type UploadedBlock } from './streamed-weights.ts';

/** What the streamed passes need from the model. */
export interface StreamedEngine {
  cfg: ModelConfig;
  weights: StreamedWeights;
  rotary?: RotaryTables;
}

/** Where a forward starts: token ids, or a residual stream at block `start`. */
export interface StreamedInput {
  /** [batch, pos] int32, validated (when starting at the embedding). */
  tokens?: tf.Tensor2D;
  /** blocks.{start}.hook_resid_pre [batch, pos, d] (when resuming). */
  resid?: tf.Tensor;
  start: number;
}

/** Options of one streamed pass. */
export interface StreamedOptions {
  hooks?: Hook[];
  rules?: RuleSet;
  lastPositionOnly?: boolean;
  /** Unembed only these vocabulary ids (logits [b, p, ids.length]). */
  logitIds?: readonly number[];
  prefixKV?: ForwardInternals['prefixKV'];
  splitQkvInput?: boolean;
  /**
   * Free each block's activations when the block is done, keeping only its output. Only for hooks
   * that keep what they store (the caching hooks here); a user's hook may hold an activation of
   * one block for a later one, as in the whole-model forward, where everything lives to the end.
   * On an 8B model a forward's activations are about 1.4 GB at 64 tokens.
   */
  tidyBlocks?: boolean;
}

/** Refuse a gradient tape around a pass that uploads and frees blocks (all kept: allowed). */
function assertNoTape(e: StreamedEngine): void {
  if (onTape() && !e.weights.keepsEveryBlock) {
    throw new Error(
      'a streamed model cannot be differentiated with tf.grad: its weights leave the heap block by block. ' +
        'Take gradients with runWithCacheAndGrads (block-wise backward), or load the whole model (--no-stream-weights)',
    );
  }
}

/** The embedding stage: tokens → blocks.0.hook_resid_pre [b, p, d] (gathering only the batch's rows). */
function embedStage(e: StreamedEngine, tokens: tf.Tensor2D, hooks: Hook[]): tf.Tensor {
  const site = compileHooks(hooks);
  const { WE, ids } = e.weights.embeddingRows(tokens);
  try {
    return embed(e.cfg, { WE, Wpos: e.weights.Wpos }, ids, site ? site.run : (_n, x) => x, false);
  } finally {
    WE.dispose();
    ids.dispose();
  }
}

/** Run block `l` on already-uploaded weights. */
function runUploaded(e: StreamedEngine, up: UploadedBlock, l: number, x: tf.Tensor, hooks: Hook[], opts: StreamedOptions): tf.Tensor {
  return runBlock(e.cfg, up.tensors, l, x, { hooks: compileHooks(hooks), rules: opts.rules, rotary: e.rotary, prefixKV: opts.prefixKV, splitQkvInput: opts.splitQkvInput });
}

/** Upload block `l`, run `f` with it, free it (also on error). */
function withBlock<T>(e: StreamedEngine, l: number, f: (up: UploadedBlock) => T): T {
  const up = e.weights.uploadBlock(l);
  try {
    return f(up);
  } finally {
    up.dispose();
  }
}

/**
 * A streamed forward: logits [b, p or 1, V] (soft-capped). Not tidied: call inside `tf.tidy` (the
 * activations live until that scope ends, as in the whole-model forward; weights are freed block by block).
 */
export function streamedForward(e: StreamedEngine, input: StreamedInput, opts: StreamedOptions): tf.Tensor3D {
  assertNoTape(e);
  const hooks = opts.hooks ?? [];
  let x = input.resid ?? embedStage(e, input.tokens!, hooks);
  for (let l = input.start; l < e.cfg.nLayers; l++) {
    const xi = x;
    x = withBlock(e, l, (up) => (opts.tidyBlocks ? tf.tidy(() => runUploaded(e, up, l, xi, hooks, opts)) : runUploaded(e, up, l, xi, hooks, opts)));
    if (opts.tidyBlocks && xi !== input.resid) xi.dispose(); // the hooks kept clones of what they store
  }
  const xf = finalNorm(e.cfg, e.weights.lnFinal, finalInput(x, opts.lastPositionOnly), { hooks: compileHooks(hooks), rules: opts.rules });
  return softcapLogits(e.cfg, e.weights.unembed(xf, opts.logitIds)) as tf.Tensor3D;
}

/** Hooks that cache (a kept clone of) each named activation. */
export function cachingHooks(names: string[], cache: ActivationCache): Hook[] {
  return names.map((name) => ({ name, fn: (x: tf.Tensor) => void (cache[name] = tf.keep(tf.clone(x))) }));
}

/** Hooks that add zero probes (whose gradients are ∂m/∂activation). */
function probeHooks(names: string[], ds: tf.Tensor[]): Hook[] {
  return names.map((name, i) => ({ name, fn: (x: tf.Tensor) => tf.add(x, ds[i]) }));
}

/** Tie every probe to the output so probes cut off from it get zero gradients (tfjs throws otherwise). */
function tie(y: tf.Tensor, ds: tf.Tensor[]): tf.Tensor {
  return ds.length ? tf.add(y, tf.mul(tf.addN(ds.map((d) => tf.sum(d))), 0)) : y;
}

/** Options of {@link streamedCacheAndGrads}. */
export interface StreamedGradOptions extends StreamedOptions {
  /** Hooks run after the caching and probe hooks at the same point (e.g. GradDrop's stop-gradients). */
  postHooks?: Hook[];
}

/** Result of {@link streamedCacheAndGrads}; the caller owns every tensor. */
export interface StreamedCacheAndGrads {
  logits: tf.Tensor3D;
  value: tf.Scalar;
  cache: ActivationCache;
  grads: ActivationCache;
}

/** The stage a hook name belongs to: -1 the embedding, L the final norm, else its block. */
function stageOf(name: string, L: number): number {
  const m = /^blocks\.(\d+)\./.exec(name);
  if (m) return Number(m[1]);
  return name.startsWith('ln_final.') ? L : -1;
}

/**
 * Forward with caching at `names`, a scalar metric of the logits, and its (rule-modified) gradient
 * at `names`, by a block-wise backward. Same results as the whole-model tape; user hooks run again
 * when a block is recomputed, so they must be pure (replace values, not store them).
 */
export function streamedCacheAndGrads(e: StreamedEngine, input: StreamedInput, metric: (logits: tf.Tensor3D) => tf.Scalar, names: string[], opts: StreamedGradOptions): StreamedCacheAndGrads {
  assertNoTape(e);
  const L = e.cfg.nLayers;
  const byStage = new Map<number, string[]>();
  for (const n of names) byStage.set(stageOf(n, L), [...(byStage.get(stageOf(n, L)) ?? []), n]);
  const at = (s: number) => byStage.get(s) ?? [];
  const user = opts.hooks ?? [];
  const post = opts.postHooks ?? [];
  const cache: ActivationCache = {};
  const grads: ActivationCache = {};
  const saved: tf.Tensor[] = []; // saved[i] = input of block start + i; the last is the final residual
  let logits: tf.Tensor3D | undefined;
  let value: tf.Scalar | undefined;
  try {
    saved.push(input.resid ? tf.clone(input.resid) : tf.tidy(() => embedStage(e, input.tokens!, [...user, ...cachingHooks(at(-1), cache), ...post])));
    for (let l = input.start; l < L; l++) {
      const x = saved[saved.length - 1];
      saved.push(withBlock(e, l, (up) => tf.tidy(() => runUploaded(e, up, l, x, [...user, ...cachingHooks(at(l), cache), ...post], opts))));
    }
    const fin = finalStage(e, saved[saved.length - 1], metric, at(L), { ...opts, hooks: user, postHooks: post }, cache);
    logits = fin.logits;
    value = fin.value;
    Object.assign(grads, fin.grads);
    let dy = fin.dResid;
    for (let l = L - 1; l >= input.start; l--) {
      const bn = at(l);
      const x = saved[l - input.start];
      const out = withBlock(e, l, (up) =>
        tf.tidy(() => {
          const ds = bn.map((n) => tf.zeros(hookShape(n, e.cfg, x.shape[0] as number, x.shape[1] as number)));
          const f = (xi: tf.Tensor, ...di: tf.Tensor[]) => tie(runUploaded(e, up, l, xi, [...user, ...probeHooks(bn, di), ...post], opts), di);
          return tf.grads(f)([x, ...ds], dy);
        }),
      );
      dy.dispose();
      dy = out[0];
      bn.forEach((n, i) => (grads[n] = out[i + 1]));
    }
    for (const n of at(-1)) grads[n] = tf.clone(dy); // resid_pre 0 = hook_embed + hook_pos_embed
    dy.dispose();
    return { logits, value, cache, grads };
  } catch (err) {
    for (const t of [...Object.values(cache), ...Object.values(grads)]) t.dispose();
    logits?.dispose();
    value?.dispose();
    throw err;
  } finally {
    for (const t of saved) t.dispose();
  }
}

/**
 * Final norm, chunked unembedding, metric: the value, the logits, the gradient at the final
 * residual [b, p, d] and at the ln_final probes. The unembedding is linear, so its VJP is taken
 * chunk by chunk outside the tape; the metric's own gradient (soft-cap included) on the tape.
 */
function finalStage(e: StreamedEngine, xL: tf.Tensor, metric: (logits: tf.Tensor3D) => tf.Scalar, names: string[], opts: StreamedGradOptions, cache: ActivationCache) {
  const [b, p] = xL.shape as [number, number, number];
  const pf = opts.lastPositionOnly ? 1 : p;
  const user = opts.hooks ?? [];
  const post = opts.postHooks ?? [];
  const norm = (x: tf.Tensor, hooks: Hook[]) => finalNorm(e.cfg, e.weights.lnFinal, x, { hooks: compileHooks(hooks), rules: opts.rules });
  const raw = tf.tidy(() => e.weights.unembed(norm(finalInput(xL, opts.lastPositionOnly), [...user, ...cachingHooks(names, cache), ...post]), opts.logitIds));
  const m = tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad((lr: tf.Tensor) => {
      const v = metric(softcapLogits(e.cfg, lr) as tf.Tensor3D);
      if (v.rank !== 0) throw new Error(`metric must return a scalar, got shape [${v.shape.join(', ')}]`);
      return v;
    })(raw);
    return { value: value as tf.Scalar, grad, logits: (e.cfg.finalSoftcap ? softcapLogits(e.cfg, raw) : tf.clone(raw)) as tf.Tensor3D };
  });
  raw.dispose();
  const dxf = e.weights.unembedVjp(m.grad, opts.logitIds);
  m.grad.dispose();
  const out = tf.tidy(() => {
    const ds = names.map((n) => tf.zeros(hookShape(n, e.cfg, b, pf)));
    const f = (xi: tf.Tensor, ...di: tf.Tensor[]) => tie(norm(finalInput(xi, opts.lastPositionOnly), [...user, ...probeHooks(names, di), ...post]), di);
    return tf.grads(f)([xL, ...ds], dxf);
  });
  dxf.dispose();
  const g: ActivationCache = {};
  names.forEach((n, i) => (g[n] = out[i + 1]));
  return { value: m.value, logits: m.logits, dResid: out[0], grads: g };
}
