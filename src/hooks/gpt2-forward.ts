/**
 * The GPT-2 forward pass with TransformerLens hook points and optional LRP rules.
 *
 * All weight matmuls are done on 2-D operands ([batch·pos, in] @ [in, out]) because the wasm
 * backend's batched 3-D matmul is ~50× slower than the 2-D kernel for large matrices.
 */
import * as tf from '@tensorflow/tfjs';
import type { GPT2Config } from '../models/config.ts';
import type { CompiledHooks } from './hook-point.ts';
import type { RuleSet } from '../relp/rules.ts';
import { identityRule, stopGradient, taylorSoftmax, uniformMatMul } from '../relp/ops.ts';

/** Weights of one block as tensors (Conv1D layout [in, out]). */
export interface BlockWeights {
  ln1W: tf.Tensor1D;
  ln1B: tf.Tensor1D;
  attnW: tf.Tensor2D; // [d_model, 3·d_model]
  attnB: tf.Tensor1D; // [3·d_model]
  projW: tf.Tensor2D; // [d_model, d_model]
  projB: tf.Tensor1D;
  ln2W: tf.Tensor1D;
  ln2B: tf.Tensor1D;
  fcW: tf.Tensor2D; // [d_model, d_mlp]
  fcB: tf.Tensor1D;
  fcProjW: tf.Tensor2D; // [d_mlp, d_model]
  fcProjB: tf.Tensor1D;
}

/** All weights of a GPT-2 as tensors. */
export interface GPT2Tensors {
  wte: tf.Tensor2D; // [d_vocab, d_model]
  wpe: tf.Tensor2D; // [n_ctx, d_model]
  blocks: BlockWeights[];
  lnfW: tf.Tensor1D;
  lnfB: tf.Tensor1D;
  /** Cached transpose of wte for the unembedding, [d_model, d_vocab]; absent when training. */
  wteT?: tf.Tensor2D;
}

/** Keys and values of the positions before a suffix, [batch, prefix, head, d_head] each. */
export interface PrefixKV {
  k: tf.Tensor;
  v: tf.Tensor;
}

/** Internal options of one forward. */
export interface ForwardInternals {
  hooks?: CompiledHooks;
  rules?: RuleSet;
  /** Embed with a one-hot matmul so gradients reach `wte` (gather has no gradient on wasm). */
  oneHotEmbed?: boolean;
  /** First block to run; `resid` must then hold blocks.{startAtLayer}.hook_resid_pre. */
  startAtLayer?: number;
  /** Stop before this block and return its hook_resid_pre instead of logits. */
  stopAtLayer?: number;
  /**
   * Cached keys and values of earlier positions, per layer (`prefixKV[l]`, each
   * [batch, prefix, head, d_head]); `resid` then holds only the later positions. Used by sweeps:
   * a patch at position p leaves positions < p unchanged, so only the suffix is recomputed.
   */
  prefixKV?: (PrefixKV | undefined)[];
  /**
   * Unembed only the last position: logits [b, 1, vocab]. Metrics read the last position, and
   * the unembedding is the largest matmul of a GPT-2 forward, so sweeps skip the rest.
   */
  lastPositionOnly?: boolean;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh approximation (HF `gelu_new`), computed as x·σ(2u), u = √(2/π)(x + 0.044715x³), which
 * equals 0.5·x·(1 + tanh u). Why: on wasm, sigmoid is a vectorised XNNPACK kernel while tanh and pow
 * are scalar loops; this form is ~16× faster and differs by ≤ 3e-7.
 */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const c = 2 * SQRT_2_OVER_PI;
  return tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), c * 0.044715), c))));
}

/** GELU, exact erf form (HF `gelu`). */
export function geluExact(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

const identityGeluNew = identityRule(geluNew);
const identityGeluExact = identityRule(geluExact);

/** Applies the hooks at a point (the identity when there are none). */
export type Hook = (name: string, x: tf.Tensor) => tf.Tensor;

/** y = x @ W + b on the last axis, via a 2-D matmul. x [..., in] → [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const lead = x.shape.slice(0, -1);
  const x2 = tf.reshape(x, [-1, x.shape[x.shape.length - 1]]);
  let y: tf.Tensor = tf.matMul(x2, w);
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...lead, w.shape[1]]);
}

/** LayerNorm with TransformerLens hooks (hook_scale [b,p,1], hook_normalized) and the LN-rule. */
function layerNorm(x: tf.Tensor, w: tf.Tensor1D, b: tf.Tensor1D, eps: number, prefix: string, hook: Hook, rules: RuleSet): tf.Tensor {
  const xc = tf.sub(x, tf.mean(x, -1, true)); // [b, p, d]
  let scale = tf.sqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps)); // [b, p, 1]
  scale = hook(`${prefix}.hook_scale`, scale);
  if (rules.ln) scale = stopGradient(scale);
  return hook(`${prefix}.hook_normalized`, tf.add(tf.mul(tf.div(xc, scale), w), b)); // [b, p, d]
}

/**
 * Additive causal mask [pos, prefix + pos]: query i (absolute position prefix + i) sees keys
 * j ≤ prefix + i; 0 where allowed, −1e9 above (finite, so LRP rules never see ∞).
 */
export function causalMask(pos: number, prefix = 0): tf.Tensor2D {
  const keys = prefix + pos;
  const data = new Float32Array(pos * keys);
  for (let i = 0; i < pos; i++) for (let j = prefix + i + 1; j < keys; j++) data[i * keys + j] = -1e9;
  return tf.tensor2d(data, [pos, keys]);
}

function attention(x: tf.Tensor, bw: BlockWeights, cfg: GPT2Config, l: number, hook: Hook, hooks: CompiledHooks | undefined, rules: RuleSet, prefix?: PrefixKV): tf.Tensor {
  const [batch, pos] = x.shape;
  const { nHeads: h, dHead: dh, dModel: d } = cfg;
  const p = `blocks.${l}.attn.`;
  const qkv = linear(x, bw.attnW, bw.attnB); // [b, p, 3d]
  const [q0, k0, v0] = tf.split(qkv, 3, -1);
  const q = hook(p + 'hook_q', tf.reshape(q0, [batch, pos, h, dh])); // [b, p, h, dh]
  const k = hook(p + 'hook_k', tf.reshape(k0, [batch, pos, h, dh])); // [b, p, h, dh]
  const v = hook(p + 'hook_v', tf.reshape(v0, [batch, pos, h, dh])); // [b, p, h, dh]
  const qT = tf.transpose(q, [0, 2, 1, 3]); // [b, h, q, dh]
  // With a cached prefix, queries are the suffix only and keys/values span every position.
  const kAll = prefix ? tf.concat([prefix.k, k], 1) : k; // [b, prefix + p, h, dh]
  const vAll = prefix ? tf.concat([prefix.v, v], 1) : v; // [b, prefix + p, h, dh]
  const kT = tf.transpose(kAll, [0, 2, 3, 1]); // [b, h, dh, k]
  const vT = tf.transpose(vAll, [0, 2, 1, 3]); // [b, h, k, dh]
  const qk = rules.uniformQK ? uniformMatMul(qT, kT) : tf.matMul(qT, kT);
  let scores = tf.add(tf.mul(qk, 1 / Math.sqrt(dh)), causalMask(pos, prefix ? (prefix.k.shape[1] as number) : 0)); // [b, h, q, k]
  scores = hook(p + 'hook_attn_scores', scores);
  let pattern = rules.softmaxTaylor ? taylorSoftmax(scores) : tf.softmax(scores); // [b, h, q, k]
  pattern = hook(p + 'hook_pattern', pattern);
  if (rules.ah) pattern = stopGradient(pattern);
  const zT = rules.uniformAV ? uniformMatMul(pattern, vT) : tf.matMul(pattern, vT); // [b, h, q, dh]
  const z = hook(p + 'hook_z', tf.transpose(zT, [0, 2, 1, 3])); // [b, q, h, dh]
  if (hooks?.has(p + 'hook_result')) {
    // Per-head outputs: only computed when someone hooks them.
    const z2 = tf.reshape(z, [batch * pos, h, dh]);
    const heads: tf.Tensor[] = [];
    for (let i = 0; i < h; i++) {
      const zi = tf.reshape(tf.slice(z2, [0, i, 0], [-1, 1, dh]), [batch * pos, dh]);
      const wi = tf.slice(bw.projW, [i * dh, 0], [dh, d]) as tf.Tensor2D;
      heads.push(tf.matMul(zi, wi)); // [b·p, d]
    }
    const result = hook(p + 'hook_result', tf.reshape(tf.stack(heads, 1), [batch, pos, h, d])); // [b, p, h, d]
    return tf.add(tf.sum(result, 2), bw.projB);
  }
  return linear(tf.reshape(z, [batch, pos, d]), bw.projW, bw.projB); // [b, p, d]
}

function mlp(x: tf.Tensor, bw: BlockWeights, cfg: GPT2Config, l: number, hook: Hook, rules: RuleSet): tf.Tensor {
  const pre = hook(`blocks.${l}.mlp.hook_pre`, linear(x, bw.fcW, bw.fcB)); // [b, p, d_mlp]
  const act = cfg.act === 'gelu' ? (rules.identity ? identityGeluExact : geluExact) : rules.identity ? identityGeluNew : geluNew;
  const post = hook(`blocks.${l}.mlp.hook_post`, act(pre)); // [b, p, d_mlp]
  return linear(post, bw.fcProjW, bw.fcProjB); // [b, p, d]
}

/** Embedding + positions → blocks.0.hook_resid_pre. tokens [b, p] int32. */
export function embed(w: GPT2Tensors, tokens: tf.Tensor2D, hook: Hook, oneHot: boolean): tf.Tensor {
  const [batch, pos] = tokens.shape;
  const d = w.wte.shape[1];
  const e = oneHot
    ? tf.reshape(tf.matMul(tf.oneHot(tf.reshape(tokens, [-1]), w.wte.shape[0]), w.wte), [batch, pos, d])
    : tf.gather(w.wte, tokens); // [b, p, d]
  const emb = hook('hook_embed', e);
  const posEmb = hook('hook_pos_embed', tf.tile(tf.expandDims(tf.slice(w.wpe, [0, 0], [pos, d]), 0), [batch, 1, 1])); // [b, p, d]
  return tf.add(emb, posEmb);
}

/**
 * Run blocks `[start, stop)` from a residual stream, then (when stop = n_layers) the final LN
 * and unembedding. Returns logits [b, p, vocab], or the residual [b, p, d] when stopping early.
 */
export function runBlocks(w: GPT2Tensors, cfg: GPT2Config, resid: tf.Tensor, opts: ForwardInternals): tf.Tensor {
  const hooks = opts.hooks;
  const hook: Hook = hooks ? hooks.run : (_n, x) => x;
  const rules = opts.rules ?? {};
  const start = opts.startAtLayer ?? 0;
  const stop = opts.stopAtLayer ?? cfg.nLayers;
  let x = resid;
  for (let l = start; l < stop; l++) {
    const bw = w.blocks[l];
    const pre = hook(`blocks.${l}.hook_resid_pre`, x); // [b, p, d]
    const attnOut = hook(`blocks.${l}.hook_attn_out`, attention(layerNorm(pre, bw.ln1W, bw.ln1B, cfg.eps, `blocks.${l}.ln1`, hook, rules), bw, cfg, l, hook, hooks, rules, opts.prefixKV?.[l]));
    const mid = hook(`blocks.${l}.hook_resid_mid`, tf.add(pre, attnOut)); // [b, p, d]
    const mlpOut = hook(`blocks.${l}.hook_mlp_out`, mlp(layerNorm(mid, bw.ln2W, bw.ln2B, cfg.eps, `blocks.${l}.ln2`, hook, rules), bw, cfg, l, hook, rules));
    x = hook(`blocks.${l}.hook_resid_post`, tf.add(mid, mlpOut)); // [b, p, d]
  }
  if (stop < cfg.nLayers) return x;
  if (opts.lastPositionOnly) {
    const [b, p, d] = x.shape as [number, number, number];
    x = tf.slice(x, [0, p - 1, 0], [b, 1, d]); // [b, 1, d]
  }
  const xf = layerNorm(x, w.lnfW, w.lnfB, cfg.eps, 'ln_final', hook, rules); // [b, p, d]
  const wteT = w.wteT ?? (tf.transpose(w.wte) as tf.Tensor2D);
  return linear(xf, wteT); // [b, p, vocab]
}

