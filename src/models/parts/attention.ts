/**
 * The attention part: q/k/v projections (fused 2-D matmul, or per-head from split inputs),
 * rotary, grouped-query attention, scaling, soft-cap, causal / sliding-window mask, softmax, and
 * the output projection. Rules: AH (pattern constant in backward), AttnLRP uniform rule on Q·Kᵀ
 * and A·V, softmax Taylor rule.
 *
 * Hooks (shapes; kv = key/value heads):
 * - `attn.hook_q` [b, p, head, d_head], `attn.hook_k` / `attn.hook_v` [b, p, kv_head, d_head]
 * - `attn.hook_rot_q` / `attn.hook_rot_k` (rotary models), same shapes, after rotary
 * - `attn.hook_attn_scores`, `attn.hook_pattern` [b, head, q_pos, k_pos]
 * - `attn.hook_z` [b, p, head, d_head], `attn.hook_result` [b, p, head, d_model] (when hooked)
 */
import * as tf from '@tensorflow/tfjs';
import { attnScale, kvGroup, type ModelConfig } from '../config.ts';
import type { RuleSet } from '../../rules/rules.ts';
import { stopGradient, taylorSoftmax, uniformMatMul } from '../../rules/ops.ts';
import { linear } from './linear.ts';
import { causalMask } from './mask.ts';
import { applyRotary, type RotaryTables } from './rotary.ts';
import type { HookRunner, HookSite } from './hooks.ts';

/** Attention weights in forward layout. */
export interface AttnWeights {
  /** Fused [d, (h + 2kv)·dh]: columns q heads | k heads | v heads. */
  qkvW: tf.Tensor2D;
  qkvB?: tf.Tensor1D;
  /** Canonical per-head weights [h|kv, d, dh] (used with split q/k/v inputs). */
  WQ: tf.Tensor3D;
  WK: tf.Tensor3D;
  WV: tf.Tensor3D;
  bQ?: tf.Tensor2D;
  bK?: tf.Tensor2D;
  bV?: tf.Tensor2D;
  /** Output projection [h·dh, d]. */
  oW: tf.Tensor2D;
  oB?: tf.Tensor1D;
}

/** Keys and values of the positions before a suffix, [batch, prefix, kv_head, d_head] each (k after rotary). */
export interface PrefixKV {
  k: tf.Tensor;
  v: tf.Tensor;
}

/** Repeat kv heads so each of the g query heads of a group sees its kv head: [b, kv, A, B] → [b, kv·g, A, B]. */
function repeatKv(x: tf.Tensor, g: number): tf.Tensor {
  if (g === 1) return x;
  // Head i reads kv head ⌊i / g⌋ (HF repeat_kv). Tiled at rank 4: tfjs has no Tile gradient at rank 5.
  const [b, kv, A, B] = x.shape as number[];
  return tf.reshape(tf.tile(tf.reshape(x, [b, kv, 1, A * B]), [1, 1, g, 1]), [b, kv * g, A, B]);
}

/** Scores from q·kᵀ: scale, soft-cap, mask. qk [b, h, q, k] → [b, h, q, k]. */
function scoresFrom(qk: tf.Tensor, cfg: ModelConfig, l: number, pos: number, prefix: number): tf.Tensor {
  let s = tf.mul(qk, attnScale(cfg));
  // Gemma-2: cap · tanh(s / cap) before the mask (HF order).
  if (cfg.attnSoftcap) s = tf.mul(tf.tanh(tf.div(s, cfg.attnSoftcap)), cfg.attnSoftcap);
  const window = cfg.slidingWindowLayers.includes(l) ? cfg.slidingWindow : undefined;
  return tf.add(s, causalMask(pos, prefix, window));
}

/** Transposes for the score matmuls: q [b, p, h, dh], k [b, k, kv, dh] → qT [b, h, p, dh], kT [b, h, dh, k]. */
function qkOperands(q: tf.Tensor, k: tf.Tensor, g: number): [tf.Tensor, tf.Tensor] {
  const qT = tf.transpose(q, [0, 2, 1, 3]); // [b, h, q, dh]
  const kT = repeatKv(tf.transpose(k, [0, 2, 3, 1]), g); // [b, h, dh, k]
  return [qT, kT];
}

/**
 * The attention pattern from q and k as the forward computes it (no hooks, no rules): rotary (k
 * at positions 0.., q at the last q.shape[1] positions), scaling, soft-cap, causal and
 * sliding-window mask, GQA repeat, softmax.
 * @param q [b, q_pos, head, d_head] before rotary (hook_q)
 * @param k [b, k_pos, kv_head, d_head] before rotary (hook_k), k_pos ≥ q_pos
 * @returns [b, head, q_pos, k_pos]
 */
export function patternFromQK(cfg: ModelConfig, l: number, q: tf.Tensor, k: tf.Tensor, rot: RotaryTables | undefined): tf.Tensor {
  const qPos = q.shape[1] as number;
  const kPos = k.shape[1] as number;
  const prefix = kPos - qPos;
  const qr = rot ? applyRotary(q, rot, prefix) : q;
  const kr = rot ? applyRotary(k, rot, 0) : k;
  const [qT, kT] = qkOperands(qr, kr, kvGroup(cfg));
  return tf.softmax(scoresFrom(tf.matMul(qT, kT), cfg, l, qPos, prefix));
}

/** Inputs of the attention: one normalized stream, or split per-head inputs already normalized. */
export type AttnInput = { x: tf.Tensor } | { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor };

/** Per-head projection of per-head inputs X [b, p, n, d] with W [n, d, dh], b [n, dh] → [b, p, n, dh]. */
function perHead(X: tf.Tensor, W: tf.Tensor3D, bias: tf.Tensor2D | undefined): tf.Tensor {
  const [b, p, n, d] = X.shape as number[];
  const dh = W.shape[2];
  // One 2-D matmul per head: wasm's batched 3-D matmul is much slower than its 2-D kernel.
  const XT = tf.reshape(tf.transpose(X, [2, 0, 1, 3]), [n, b * p, d]); // [n, b·p, d]
  const heads = Array.from({ length: n }, (_, h) => {
    const xh = tf.reshape(tf.slice(XT, [h, 0, 0], [1, b * p, d]), [b * p, d]); // [b·p, d]
    let y = tf.matMul(xh, tf.reshape(tf.slice(W, [h, 0, 0], [1, d, dh]), [d, dh])); // [b·p, dh]
    if (bias) y = tf.add(y, tf.reshape(tf.slice(bias, [h, 0], [1, dh]), [dh]));
    return y;
  });
  return tf.reshape(tf.transpose(tf.stack(heads), [1, 0, 2]), [b, p, n, dh]); // [b, p, n, dh]
}

/** Attention forward. Returns the output [b, p, d] (before Gemma's post-norm). */
export function attention(
  input: AttnInput,
  w: AttnWeights,
  cfg: ModelConfig,
  l: number,
  hook: HookRunner,
  hooks: HookSite | undefined,
  rules: RuleSet,
  rot: RotaryTables | undefined,
  prefixKV?: PrefixKV,
): tf.Tensor {
  const { nHeads: h, nKvHeads: kv, dHead: dh, dModel: d } = cfg;
  const p = `blocks.${l}.attn.`;
  let q: tf.Tensor;
  let k: tf.Tensor;
  let v: tf.Tensor;
  let batch: number;
  let pos: number;
  if ('x' in input) {
    [batch, pos] = input.x.shape as number[];
    const qkv = linear(input.x, w.qkvW, w.qkvB); // [b, p, (h + 2kv)·dh]
    const [q0, k0, v0] = tf.split(qkv, [h * dh, kv * dh, kv * dh], -1);
    q = tf.reshape(q0, [batch, pos, h, dh]);
    k = tf.reshape(k0, [batch, pos, kv, dh]);
    v = tf.reshape(v0, [batch, pos, kv, dh]);
  } else {
    [batch, pos] = input.q.shape as number[];
    q = perHead(input.q, w.WQ, w.bQ);
    k = perHead(input.k, w.WK, w.bK);
    v = perHead(input.v, w.WV, w.bV);
  }
  q = hook(p + 'hook_q', q); // [b, p, h, dh]
  k = hook(p + 'hook_k', k); // [b, p, kv, dh]
  v = hook(p + 'hook_v', v); // [b, p, kv, dh]
  const prefix = prefixKV ? (prefixKV.k.shape[1] as number) : 0;
  if (rot) {
    q = hook(p + 'hook_rot_q', applyRotary(q, rot, prefix)); // [b, p, h, dh]
    k = hook(p + 'hook_rot_k', applyRotary(k, rot, prefix)); // [b, p, kv, dh]
  }
  // With a cached prefix, queries are the suffix only and keys/values span every position.
  const kAll = prefixKV ? tf.concat([prefixKV.k, k], 1) : k; // [b, prefix + p, kv, dh]
  const vAll = prefixKV ? tf.concat([prefixKV.v, v], 1) : v; // [b, prefix + p, kv, dh]
  const g = kvGroup(cfg);
  const [qT, kT] = qkOperands(q, kAll, g);
  const vT = repeatKv(tf.transpose(vAll, [0, 2, 1, 3]), g); // [b, h, k, dh]
  const qk = rules.uniformQK ? uniformMatMul(qT, kT) : tf.matMul(qT, kT);
  const scores = hook(p + 'hook_attn_scores', scoresFrom(qk, cfg, l, pos, prefix)); // [b, h, q, k]
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
      const wi = tf.slice(w.oW, [i * dh, 0], [dh, d]) as tf.Tensor2D;
      heads.push(tf.matMul(zi, wi)); // [b·p, d]
    }
    const result = hook(p + 'hook_result', tf.reshape(tf.stack(heads, 1), [batch, pos, h, d])); // [b, p, h, d]
    const summed = tf.sum(result, 2);
    return w.oB ? tf.add(summed, w.oB) : summed;
  }
  return linear(tf.reshape(z, [batch, pos, h * dh]), w.oW, w.oB); // [b, p, d]
}
