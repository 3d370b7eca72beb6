/**
 * Memory guard. The wasm backend's heap tops out near 4 GB and allocations past that point
 * silently corrupt tensors, so we estimate a call's peak bytes and refuse one that would not fit.
 */
import * as tf from '@tensorflow/tfjs';
import { resolveConfig, type ConfigInput, type ModelConfig } from '../models/config.ts';

/** Bytes allowed on the wasm heap for one call (the heap tops out near 4 GB). */
export const WASM_HEAP_LIMIT_BYTES = 3.5e9;

/**
 * The heap budget in force: {@link WASM_HEAP_LIMIT_BYTES}, or less with RELP_HEAP_LIMIT_GB (a
 * smaller budget, e.g. to leave memory to other work; never more, since the wasm heap stops near 4 GB).
 */
export function heapLimitBytes(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.RELP_HEAP_LIMIT_GB;
  if (v === undefined || v === '') return WASM_HEAP_LIMIT_BYTES;
  const gb = Number(v);
  if (!(gb > 0)) throw new Error(`RELP_HEAP_LIMIT_GB must be a positive number of GB, got "${v}"`);
  return Math.min(WASM_HEAP_LIMIT_BYTES, gb * 1e9);
}

/** What a call will do, for the estimate. */
export interface WorkloadShape {
  /** Number of sequences in one forward (prompts × patches stacked in the batch). */
  batch: number;
  /** Tokens per sequence. */
  pos: number;
  /** Whether a backward pass runs (all layers' activations are kept for it). */
  backward?: boolean;
  /** Number of cached activations of size [batch, pos, d_model] kept beyond the forward. */
  cachedResiduals?: number;
  /** Only the last position is unembedded: logits [batch, 1, vocab]. */
  lastPositionOnly?: boolean;
  /**
   * Each head reads its own copy of the residual stream (`splitQkvInput`, edge circuits): the
   * first norm and its hooks run on [batch, pos, head + 2·kv_head, d_model] per block.
   */
  splitQkv?: boolean;
  /**
   * Weights streamed from disk one block at a time (hooks/streamed-weights.ts): the heap holds
   * one block, the small globals and one vocabulary chunk; a backward is block-wise.
   */
  streamed?: boolean;
}

/** Floats of one unembedding chunk a streamed run uploads (hooks/streamed-weights.ts). */
export const STREAM_CHUNK_FLOATS = 1 << 24;

/**
 * Floats one block allocates in a forward. Every forward runs inside one `tf.tidy`, so nothing is
 * freed before the call ends and all blocks' tensors are alive at the peak. Counted from the
 * kernels of models/forward.ts and its parts (per block: ~30 tensors of [b, p, d_model] with
 * LayerNorm and biases, ~12 with RMSNorm (20 with Gemma's post-norms); 10 of [b, p, d_mlp] (a
 * SwiGLU MLP: 6); 4 of [b, h, p, p] and the [p, p] mask; rotary adds ~6 tensors of q/k size
 * (slices, rotate_half, cos/sin products), grouped-query attention the repeated keys and values),
 * fitted to and checked against the measured wasm heap in test/backend/memory-guard.test.ts.
 */
function blockFloats(cfg: ModelConfig, batch: number, pos: number, splitQkv = false): number {
  const bp = batch * pos;
  const qkSize = bp * (cfg.nHeads + cfg.nKvHeads) * cfg.dHead;
  // LayerNorm (centering) and biases make GPT-2-style blocks heavier in [b, p, d] tensors than RMSNorm ones.
  const dTensors = cfg.normType === 'layernorm' ? 30 : 12 + (cfg.postNorms ? 8 : 0);
  // SiLU is two kernels; the tanh-GELU form about seven.
  const cheapAct = cfg.act === 'silu' || cfg.act === 'relu';
  const mTensors = cfg.mlpKind === 'gated' ? (cheapAct ? 6 : 12) : 10;
  const rotary = cfg.positional === 'rotary' ? 6 * qkSize : 0;
  const gqa = cfg.nKvHeads < cfg.nHeads ? 2 * bp * cfg.nHeads * cfg.dHead : 0;
  // Split inputs: per-head residual copies, the norm's ~12 tensors on each, and the probes.
  const split = splitQkv ? 12 * bp * (cfg.nHeads + 2 * cfg.nKvHeads) * cfg.dModel : 0;
  return bp * (dTensors * cfg.dModel + mTensors * cfg.dMlp) + rotary + gqa + 4 * batch * cfg.nHeads * pos * pos + 2 * pos * pos + split;
}

/**
 * Floats of one block's weights as an inference model holds them: the canonical q/k/v/o and MLP
 * matrices, the fused [d, (h + 2kv)·d_head] q|k|v copy the forward multiplies with, biases, norms.
 */
function blockParams(cfg: ModelConfig): number {
  const { dModel: d, nHeads: h, nKvHeads: kv, dHead: dh, dMlp: m } = cfg;
  const qkv = d * (h + 2 * kv) * dh;
  const attn = 2 * qkv + h * dh * d + (cfg.qkvBias ? 2 * (h + 2 * kv) * dh : 0) + (cfg.attnOutBias ? d : 0);
  const mlp = (cfg.mlpKind === 'gated' ? 3 : 2) * d * m + (cfg.mlpBias ? (cfg.mlpKind === 'gated' ? 2 : 1) * m + d : 0);
  const norms = (cfg.postNorms ? 4 : 2) * d * (cfg.normBias ? 2 : cfg.normType === 'gemma-rmsnorm' ? 2 : 1);
  return attn + mlp + norms;
}

/** Bytes of one block's weights as a streamed model holds them on the heap (float32, with the fused q|k|v copy). */
export function blockWeightBytes(config: ConfigInput): number {
  return 4 * blockParams(resolveConfig(config));
}

/** Share of the heap budget a streamed model may fill with blocks kept uploaded between passes. */
export const BLOCK_CACHE_SHARE = 0.4;

/**
 * How many blocks a streamed model keeps uploaded between passes (its first ones): as many as fit
 * in {@link BLOCK_CACHE_SHARE} of the heap budget, or in RELP_BLOCK_CACHE_GB (0 turns the cache
 * off). Each counts twice its weights: XNNPACK keeps a packed copy of every matrix a resident
 * block multiplies by. A model whose blocks all fit then streams only once; an 8B model's block
 * (about 1 GB) never fits, so its heap holds one block at a time.
 */
export function cachedBlockCount(config: ConfigInput, env: NodeJS.ProcessEnv = process.env): number {
  const cfg = resolveConfig(config);
  const v = env.RELP_BLOCK_CACHE_GB;
  let budget = BLOCK_CACHE_SHARE * heapLimitBytes(env);
  if (v !== undefined && v !== '') {
    const gb = Number(v);
    if (!(gb >= 0)) throw new Error(`RELP_BLOCK_CACHE_GB must be a number of GB (0 turns the block cache off), got "${v}"`);
    budget = gb * 1e9;
  }
  return Math.min(cfg.nLayers, Math.floor(budget / (2 * blockWeightBytes(cfg))));
}

/**
 * Estimated peak bytes of a forward (and backward) of `cfg` on a workload, weights included.
 * Within about 1.0–1.3× of the measured peak of live wasm buffers (see the test).
 * - forward: weights (the unembedding twice: a tied W_E's transposed copy, or an untied W_U
 *   beside W_E), every block's tensors, the embedding / final norm and the logits;
 * - backward adds about one forward tape of gradients and the logit gradients. tfjs computes no
 *   weight gradients for constant weights, and with the zero-copy Identity (wasm-matmul.ts) the
 *   inputs the tape saves share their buffers, so no weight or activation copies are counted.
 */
export function estimateBytes(config: ConfigInput, w: WorkloadShape): number {
  const cfg = resolveConfig(config);
  if (w.streamed) return estimateStreamedBytes(cfg, w);
  const d = cfg.dModel;
  const bp = w.batch * w.pos;
  const bw = blockParams(cfg);
  const pos = cfg.positional === 'learned' ? cfg.nCtx * d : 2 * cfg.nCtx * cfg.rotaryDim; // W_pos, or the cos/sin tables
  const finalNorm = d * (cfg.normBias || cfg.normType === 'gemma-rmsnorm' ? 2 : 1);
  const params = 2 * cfg.dVocab * d + (cfg.unembedBias ? cfg.dVocab : 0) + pos + cfg.nLayers * bw + finalNorm;
  const block = blockFloats(cfg, w.batch, w.pos, w.splitQkv);
  const bv = w.batch * (w.lastPositionOnly ? 1 : w.pos) * cfg.dVocab; // logits
  const forward = cfg.nLayers * block + bp * 16 * d + 2 * bv;
  const backward = w.backward ? cfg.nLayers * block + bp * 24 * d + 4 * bv : 0;
  const cached = (w.cachedResiduals ?? 0) * bp * d;
  return 4 * (params + forward + backward + cached);
}

/**
 * Estimated peak bytes of a streamed call: one block's weights (uploaded, with the fused q|k|v
 * copy), the blocks kept uploaded ({@link cachedBlockCount}) and the globals instead of the model; one vocabulary chunk and its [rows, chunk] logits;
 * a forward's activations (they live until the call ends, as in the whole-model forward); for a
 * block-wise backward, the residual saved at every block boundary plus one block recomputed on
 * the tape (forward and its gradients).
 */
function estimateStreamedBytes(cfg: ModelConfig, w: WorkloadShape): number {
  const d = cfg.dModel;
  const bp = w.batch * w.pos;
  const rows = w.batch * (w.lastPositionOnly ? 1 : w.pos);
  const chunk = Math.min(cfg.dVocab * d, STREAM_CHUNK_FLOATS);
  const pos = cfg.positional === 'learned' ? cfg.nCtx * d : 2 * cfg.nCtx * cfg.rotaryDim;
  const cache = 2 * cachedBlockCount(cfg) * blockParams(cfg);
  const params = blockParams(cfg) + cache + pos + 2 * d + (cfg.unembedBias ? cfg.dVocab : 0) + chunk + bp * d;
  const block = blockFloats(cfg, w.batch, w.pos, w.splitQkv);
  const bv = rows * cfg.dVocab;
  const logits = 2 * rows * (chunk / d) + 4 * bv;
  const acts = w.backward ? (cfg.nLayers + 1) * bp * d + 3 * block + bp * 24 * d : cfg.nLayers * block + bp * 16 * d;
  const cached = (w.cachedResiduals ?? 0) * bp * d;
  return 4 * (params + logits + acts + cached);
}

/** Largest batch whose estimate stays under the wasm limit (at least 0). */
export function maxBatchUnderLimit(cfg: ConfigInput, w: Omit<WorkloadShape, 'batch'>, limit = heapLimitBytes()): number {
  let lo = 0;
  let hi = 1;
  while (estimateBytes(cfg, { ...w, batch: hi }) <= limit && hi < 1 << 20) hi *= 2;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (estimateBytes(cfg, { ...w, batch: mid }) <= limit) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Refuse a run that would overflow the wasm heap. On other backends this is a no-op.
 * @param what a short description for the error (e.g. "activation patching sweep")
 * @throws Error naming the batch size to lower to.
 */
export function guardMemory(cfg: ConfigInput, w: WorkloadShape, what = 'this run', backend = tf.getBackend()): void {
  if (backend !== 'wasm') return;
  const need = estimateBytes(cfg, w);
  const limit = heapLimitBytes();
  if (need <= limit) return;
  const ok = maxBatchUnderLimit(cfg, w);
  const gb = (b: number) => (b / 1e9).toFixed(2);
  throw new Error(
    `${what} needs about ${gb(need)} GB, over the heap budget of ${gb(limit)} GB (the wasm heap stops near 4 GB and corrupts tensors silently past it). ` +
      `Lower the batch size from ${w.batch} to at most ${ok} sequences per forward` +
      (ok === 0 ? ' (even batch 1 does not fit: use fewer tokens or a smaller model)' : ` (--batch ${Math.max(1, ok)} for activation patching, --shard-prompts ${Math.max(1, ok)} for AtP and RelP)`) +
      ', or use a GPU backend.',
  );
}

/** How a model runs: all weights on the heap, or streamed from disk block by block. */
export interface ExecutionChoice {
  mode: 'resident' | 'streamed';
  /** One line saying why, for logs. */
  reason: string;
}

/** The smallest useful call, for the whole-model test: one 64-token prompt, forward and backward. */
const PROBE_WORKLOAD: WorkloadShape = { batch: 1, pos: 64, backward: true, lastPositionOnly: true };

/**
 * Whole-model or streamed execution for a model, decided before any weight is read: streamed when
 * one 64-token forward and backward of the whole model would not fit the heap (or when forced).
 * @param force `true` / `false` from `--stream-weights` / `--no-stream-weights`; undefined decides.
 * @throws when even a streamed 64-token call would not fit (one block is too large).
 */
export function chooseExecution(config: ConfigInput, force?: boolean, backend = tf.getBackend()): ExecutionChoice {
  const cfg = resolveConfig(config);
  const gb = (b: number) => (b / 1e9).toFixed(2);
  const limit = heapLimitBytes();
  const whole = estimateBytes(cfg, PROBE_WORKLOAD);
  const streamed = estimateBytes(cfg, { ...PROBE_WORKLOAD, streamed: true });
  if (force === false) return { mode: 'resident', reason: `whole model on the heap (--no-stream-weights; about ${gb(whole)} GB for a 64-token pass)` };
  if (backend === 'wasm' && streamed > limit) {
    throw new Error(`even streamed, one block of this model and a 64-token pass need about ${gb(streamed)} GB, over the heap budget of ${gb(limit)} GB; nothing was loaded`);
  }
  if (force === true) return { mode: 'streamed', reason: `weights streamed from disk block by block (--stream-weights; about ${gb(streamed)} GB for a 64-token pass)` };
  if (backend !== 'wasm' || whole <= limit) return { mode: 'resident', reason: `whole model on the heap (about ${gb(whole)} GB for a 64-token pass)` };
  return {
    mode: 'streamed',
    reason: `weights streamed from disk block by block: the whole model needs about ${gb(whole)} GB for a 64-token pass, over the heap budget of ${gb(limit)} GB (streamed: about ${gb(streamed)} GB)`,
  };
}
