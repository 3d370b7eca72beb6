/**
 * The one forward pass of every architecture, built from the norm / attention / MLP parts and
 * driven by a {@link ModelConfig}, with TransformerLens hook points and optional LRP rules.
 *
 * Weights arrive as canonical tensors (canonical.ts); {@link buildForwardTensors} derives the
 * forward layout from them (a fused 2-D q|k|v matrix, 2-D views of W_O, Wᵤ = W_Eᵀ for tied
 * models). Inference builds it once at load; training builds it inside every forward, so
 * gradients reach the canonical variables.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.ts';
import type { RuleSet } from '../rules/rules.ts';
import { applyNorm, type NormWeights } from './parts/norm.ts';
import { attention, type AttnWeights, type PrefixKV } from './parts/attention.ts';
import { mlp, type MlpWeights } from './parts/mlp.ts';
import { linear } from './parts/linear.ts';
import { NO_HOOK, type HookRunner, type HookSite } from './parts/hooks.ts';
import type { RotaryTables } from './parts/rotary.ts';

export type { PrefixKV } from './parts/attention.ts';

/** One block's tensors in forward layout. */
export interface BlockTensors {
  ln1: NormWeights;
  ln2: NormWeights;
  ln1Post?: NormWeights;
  ln2Post?: NormWeights;
  attn: AttnWeights;
  mlp: MlpWeights;
}

/** All tensors the forward reads. */
export interface ForwardTensors {
  /** [V, d] */
  WE: tf.Tensor2D;
  /** [nCtx, d] (learned positions only) */
  Wpos?: tf.Tensor2D;
  blocks: BlockTensors[];
  lnFinal: NormWeights;
  /** [d, V] */
  WU: tf.Tensor2D;
  bU?: tf.Tensor1D;
}

/** Accessors of a parameter map with named internal errors. */
function paramGetters(params: Map<string, tf.Tensor>) {
  const g = <T extends tf.Tensor>(n: string): T => {
    const t = params.get(n);
    if (!t) throw new Error(`internal: canonical tensor "${n}" is missing`);
    return t as T;
  };
  const opt = <T extends tf.Tensor>(n: string): T | undefined => params.get(n) as T | undefined;
  return { g, opt };
}

/** A norm's forward weights (Gemma's norm multiplies by 1 + w: that sum is created). */
function normTensors(cfg: ModelConfig, params: Map<string, tf.Tensor>, p: string, make: <T extends tf.Tensor>(t: T) => T): NormWeights {
  const { g, opt } = paramGetters(params);
  const w = g<tf.Tensor1D>(`${p}.w`);
  const nw: NormWeights = { w, b: opt<tf.Tensor1D>(`${p}.b`) };
  if (cfg.normType === 'gemma-rmsnorm') nw.gain = make(tf.add(w, 1) as tf.Tensor1D);
  return nw;
}

/**
 * Block `l`'s forward layout from canonical tensors (`params` needs only `blocks.{l}.*`). Tensors
 * created beyond `params` go through `make` (the caller frees them). No tidy: see {@link buildForwardTensors}.
 */
export function buildBlockTensors(cfg: ModelConfig, l: number, params: Map<string, tf.Tensor>, make: <T extends tf.Tensor>(t: T) => T): BlockTensors {
  const { g, opt } = paramGetters(params);
  const norm = (p: string) => normTensors(cfg, params, p, make);
  const { dModel: d, nHeads: h, nKvHeads: kv, dHead: dh } = cfg;
  const p = `blocks.${l}.`;
  const WQ = g<tf.Tensor3D>(p + 'attn.W_Q');
  const WK = g<tf.Tensor3D>(p + 'attn.W_K');
  const WV = g<tf.Tensor3D>(p + 'attn.W_V');
  const bQ = opt<tf.Tensor2D>(p + 'attn.b_Q');
  const bK = opt<tf.Tensor2D>(p + 'attn.b_K');
  const bV = opt<tf.Tensor2D>(p + 'attn.b_V');
  // [n, d, dh] → [d, n·dh]: column block of head i is W[i] (the GPT-2 checkpoint's fused layout, exactly).
  const cols = (W: tf.Tensor3D, n: number) => tf.reshape(tf.transpose(W, [1, 0, 2]), [d, n * dh]);
  const qkvW = make(tf.concat([cols(WQ, h), cols(WK, kv), cols(WV, kv)], 1) as tf.Tensor2D);
  const qkvB = bQ && bK && bV ? make(tf.concat([tf.reshape(bQ, [-1]), tf.reshape(bK, [-1]), tf.reshape(bV, [-1])]) as tf.Tensor1D) : undefined;
  const attn: AttnWeights = {
    qkvW,
    qkvB,
    WQ,
    WK,
    WV,
    bQ,
    bK,
    bV,
    oW: make(tf.reshape(g(p + 'attn.W_O'), [h * dh, d]) as tf.Tensor2D), // a view: no copy
    oB: opt(p + 'attn.b_O'),
  };
  const mlpW: MlpWeights = {
    inW: g(p + 'mlp.W_in'),
    inB: opt(p + 'mlp.b_in'),
    gateW: opt(p + 'mlp.W_gate'),
    gateB: opt(p + 'mlp.b_gate'),
    outW: g(p + 'mlp.W_out'),
    outB: opt(p + 'mlp.b_out'),
  };
  return {
    ln1: norm(p + 'ln1'),
    ln2: norm(p + 'ln2'),
    ln1Post: cfg.postNorms ? norm(p + 'ln1_post') : undefined,
    ln2Post: cfg.postNorms ? norm(p + 'ln2_post') : undefined,
    attn,
    mlp: mlpW,
  };
}

/**
 * Derive the forward layout from canonical tensors. The tensors the result holds beyond `params`
 * are listed in `created`; to build once, call inside `tf.tidy` and `tf.keep` them (intermediate
 * transposes are then freed). No inner tidy: in training this runs on the gradient tape.
 */
export function buildForwardTensors(cfg: ModelConfig, params: Map<string, tf.Tensor>): { tensors: ForwardTensors; created: tf.Tensor[] } {
  const created: tf.Tensor[] = [];
  const make = <T extends tf.Tensor>(t: T): T => (created.push(t), t);
  const { g, opt } = paramGetters(params);
  const norm = (p: string) => normTensors(cfg, params, p, make);
  const blocks: BlockTensors[] = [];
  for (let l = 0; l < cfg.nLayers; l++) blocks.push(buildBlockTensors(cfg, l, params, make));
  const WE = g<tf.Tensor2D>('embed.W_E');
  const tensors: ForwardTensors = {
    WE,
    Wpos: opt('pos_embed.W_pos'),
    blocks,
    lnFinal: norm('ln_final'),
    WU: cfg.tiedEmbeddings ? make(tf.transpose(WE) as tf.Tensor2D) : g('unembed.W_U'),
    bU: opt('unembed.b_U'),
  };
  return { tensors, created };
}

/** Internal options of one forward. */
export interface ForwardInternals {
  hooks?: HookSite;
  rules?: RuleSet;
  /** Rotary tables (rotary models). */
  rotary?: RotaryTables;
  /** First block to run; `resid` must then hold blocks.{startAtLayer}.hook_resid_pre. */
  startAtLayer?: number;
  /** Stop before this block and return its hook_resid_pre instead of logits. */
  stopAtLayer?: number;
  /**
   * Cached keys (after rotary) and values of earlier positions, per layer (`prefixKV[l]`, each
   * [batch, prefix, kv_head, d_head]); `resid` then holds only the later positions. Used by
   * sweeps: a patch at position p leaves positions < p unchanged, so only the suffix is recomputed.
   */
  prefixKV?: (PrefixKV | undefined)[];
  /** Unembed only the last position: logits [b, 1, vocab] (the unembedding is the largest matmul). */
  lastPositionOnly?: boolean;
  /** Unembed only these vocabulary ids: logits [b, p, ids.length], columns in this order. */
  logitIds?: readonly number[];
  /**
   * TransformerLens `use_split_qkv_input`: each head's q/k/v input is its own residual stream
   * (`attn.hook_q_input` [b, p, head, d], `hook_k_input` / `hook_v_input` [b, p, kv_head, d]),
   * normalised per head (`ln1.hook_scale_q|k|v` [b, p, head|kv_head, 1]) and projected per head.
   */
  splitQkvInput?: boolean;
}

/** Embedding (scaled for Gemma) + learned positions → blocks.0.hook_resid_pre. tokens [b, p] int32. */
export function embed(cfg: ModelConfig, w: Pick<ForwardTensors, 'WE' | 'Wpos'>, tokens: tf.Tensor2D, hook: HookRunner, oneHot: boolean): tf.Tensor {
  const [batch, pos] = tokens.shape;
  const d = cfg.dModel;
  let e = oneHot
    ? tf.reshape(tf.matMul(tf.oneHot(tf.reshape(tokens, [-1]), w.WE.shape[0]), w.WE), [batch, pos, d])
    : tf.gather(w.WE, tokens); // [b, p, d]
  if (cfg.embedScale !== 1) e = tf.mul(e, cfg.embedScale);
  const emb = hook('hook_embed', e);
  if (!w.Wpos) return emb;
  const posEmb = hook('hook_pos_embed', tf.tile(tf.expandDims(tf.slice(w.Wpos, [0, 0], [pos, d]), 0), [batch, 1, 1])); // [b, p, d]
  return tf.add(emb, posEmb);
}

/** A residual stream broadcast to n per-head copies: [b, p, d] → [b, p, n, d] (an add, not Tile: faster on wasm). */
function perHeadCopies(x: tf.Tensor, n: number): tf.Tensor {
  return tf.add(tf.expandDims(x, 2), tf.zeros([1, 1, n, 1]));
}

/**
 * Block `l` on a residual stream x [b, p, d] → blocks.{l}.hook_resid_post [b, p, d]: norm, attention,
 * MLP (sequential or parallel), with the hooks and rules of `opts`. Not tidied.
 */
export function runBlock(cfg: ModelConfig, bw: BlockTensors, l: number, x: tf.Tensor, opts: ForwardInternals): tf.Tensor {
  const hooks = opts.hooks;
  const hook: HookRunner = hooks ? hooks.run : NO_HOOK;
  const rules = opts.rules ?? {};
  const nt = cfg.normType;
  const b = `blocks.${l}.`;
  const pre = hook(b + 'hook_resid_pre', x); // [b, p, d]
  let attnIn;
  if (opts.splitQkvInput) {
    const split = (which: 'q' | 'k' | 'v', n: number) => {
      const inp = hook(`${b}attn.hook_${which}_input`, perHeadCopies(pre, n)); // [b, p, n, d]
      return applyNorm(inp, nt, bw.ln1, cfg.eps, b + 'ln1', hook, rules, `${b}ln1.hook_scale_${which}`, `${b}ln1.hook_normalized_${which}`);
    };
    attnIn = { q: split('q', cfg.nHeads), k: split('k', cfg.nKvHeads), v: split('v', cfg.nKvHeads) };
  } else {
    attnIn = { x: applyNorm(pre, nt, bw.ln1, cfg.eps, b + 'ln1', hook, rules) };
  }
  let attnOut = attention(attnIn, bw.attn, cfg, l, hook, hooks, rules, opts.rotary, opts.prefixKV?.[l]); // [b, p, d]
  if (bw.ln1Post) attnOut = applyNorm(attnOut, nt, bw.ln1Post, cfg.eps, b + 'ln1_post', hook, rules);
  attnOut = hook(b + 'hook_attn_out', attnOut);
  if (cfg.parallelAttnMlp) {
    // GPT-NeoX parallel residual: the MLP reads resid_pre too; no resid_mid exists.
    const mlpIn = hook(b + 'hook_mlp_in', pre); // [b, p, d]
    const mlpOut = hook(b + 'hook_mlp_out', mlp(applyNorm(mlpIn, nt, bw.ln2, cfg.eps, b + 'ln2', hook, rules), bw.mlp, cfg.act, b + 'mlp', hook, rules));
    return hook(b + 'hook_resid_post', tf.add(tf.add(mlpOut, attnOut), pre)); // HF's order: mlp + attn + residual
  }
  const mid = hook(b + 'hook_resid_mid', tf.add(pre, attnOut)); // [b, p, d]
  const mlpIn = hook(b + 'hook_mlp_in', mid); // [b, p, d]
  let mlpOut = mlp(applyNorm(mlpIn, nt, bw.ln2, cfg.eps, b + 'ln2', hook, rules), bw.mlp, cfg.act, b + 'mlp', hook, rules);
  if (bw.ln2Post) mlpOut = applyNorm(mlpOut, nt, bw.ln2Post, cfg.eps, b + 'ln2_post', hook, rules);
  mlpOut = hook(b + 'hook_mlp_out', mlpOut);
  return hook(b + 'hook_resid_post', tf.add(mid, mlpOut)); // [b, p, d]
}

/** The final norm's input: the last position only when asked, x [b, p, d] → [b, 1 or p, d]. */
export function finalInput(x: tf.Tensor, lastPositionOnly: boolean | undefined): tf.Tensor {
  if (!lastPositionOnly) return x;
  const [bb, p, d] = x.shape as [number, number, number];
  return tf.slice(x, [0, p - 1, 0], [bb, 1, d]); // [b, 1, d]
}

/** Final norm (with its hooks and rules): [b, p, d] → ln_final.hook_normalized [b, p, d]. */
export function finalNorm(cfg: ModelConfig, lnFinal: NormWeights, x: tf.Tensor, opts: ForwardInternals): tf.Tensor {
  return applyNorm(x, cfg.normType, lnFinal, cfg.eps, 'ln_final', opts.hooks ? opts.hooks.run : NO_HOOK, opts.rules ?? {});
}

/** Gemma-2's final soft-cap, cap · tanh(logits / cap) (the identity for other models). */
export function softcapLogits(cfg: ModelConfig, logits: tf.Tensor): tf.Tensor {
  return cfg.finalSoftcap ? tf.mul(tf.tanh(tf.div(logits, cfg.finalSoftcap)), cfg.finalSoftcap) : logits;
}

/**
 * Run blocks `[start, stop)` from a residual stream, then (when stop = n_layers) the final norm
 * and unembedding. Returns logits [b, p, vocab], or the residual [b, p, d] when stopping early.
 */
export function runBlocks(cfg: ModelConfig, w: ForwardTensors, resid: tf.Tensor, opts: ForwardInternals): tf.Tensor {
  const start = opts.startAtLayer ?? 0;
  const stop = opts.stopAtLayer ?? cfg.nLayers;
  let x = resid;
  for (let l = start; l < stop; l++) x = runBlock(cfg, w.blocks[l], l, x, opts);
  if (stop < cfg.nLayers) return x;
  const xf = finalNorm(cfg, w.lnFinal, finalInput(x, opts.lastPositionOnly), opts); // [b, p, d]
  if (!opts.logitIds) return softcapLogits(cfg, linear(xf, w.WU, w.bU)); // [b, p, vocab]
  if (tf.getBackend() !== 'wasm') {
    // GPU backends bind a whole input to one kernel, and W_U can exceed that limit: unembed
    // everything, then take the columns by slices (differentiable on every backend).
    const all = linear(xf, w.WU, w.bU);
    return softcapLogits(cfg, tf.concat(opts.logitIds.map((v) => tf.slice(all, [0, 0, v], [-1, -1, 1])), 2)); // [b, p, k]
  }
  // Only the columns a metric reads: [d, k] instead of [d, vocab] (the largest matmul of a sweep).
  const ids = tf.tensor1d(Int32Array.from(opts.logitIds), 'int32');
  return softcapLogits(cfg, linear(xf, tf.gather(w.WU, ids, 1) as tf.Tensor2D, w.bU && (tf.gather(w.bU, ids) as tf.Tensor1D))); // [b, p, k]
}
