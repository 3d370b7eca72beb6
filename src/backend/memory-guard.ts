/**
 * Memory guard. The wasm backend's heap tops out near 4 GB and allocations past that point
 * silently corrupt tensors, so we estimate a call's peak bytes and refuse one that would not fit.
 */
import * as tf from '@tensorflow/tfjs';
import type { GPT2Config } from '../models/config.ts';

/** Bytes allowed on the wasm heap for one call (the heap tops out near 4 GB). */
export const WASM_HEAP_LIMIT_BYTES = 3.5e9;

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
}

/**
 * Floats one block allocates in a forward. Every forward runs inside one `tf.tidy`, so nothing is
 * freed before the call ends and all blocks' tensors are alive at the peak. Counted from the
 * kernels of `gpt2-forward.ts` (per block: ~30 tensors of [b, p, d_model], 10 of [b, p, d_mlp],
 * 4 of [b, h, p, p] and the [p, p] causal mask) and checked against the measured wasm heap in
 * test/backend/memory-guard.test.ts.
 */
function blockFloats(cfg: GPT2Config, batch: number, pos: number): number {
  const bp = batch * pos;
  return bp * (30 * cfg.dModel + 10 * cfg.dMlp) + 4 * batch * cfg.nHeads * pos * pos + 2 * pos * pos;
}

/** Parameters of one block (attention 4·d², MLP 2·d·d_mlp, biases and LN). */
function blockParams(cfg: GPT2Config): number {
  const d = cfg.dModel;
  return 4 * d * d + 2 * d * cfg.dMlp + 9 * d + cfg.dMlp;
}

/**
 * Estimated peak bytes of a forward (and backward) of `cfg` on a workload, weights included.
 * Within about 1.0–1.3× of the measured peak of live wasm buffers (see the test).
 * - forward: weights (wte counted twice: its transposed copy for the unembedding), every block's
 *   tensors, the embedding / final LN and the logits;
 * - backward adds about one forward tape of gradients and the logit gradients. tfjs computes no
 *   weight gradients for constant weights, and with the zero-copy Identity (wasm-matmul.ts) the
 *   inputs the tape saves share their buffers, so no weight or activation copies are counted.
 */
export function estimateBytes(cfg: GPT2Config, w: WorkloadShape): number {
  const d = cfg.dModel;
  const bp = w.batch * w.pos;
  const bw = blockParams(cfg);
  const params = 2 * cfg.dVocab * d + cfg.nCtx * d + cfg.nLayers * bw + 2 * d;
  const block = blockFloats(cfg, w.batch, w.pos);
  const bv = w.batch * (w.lastPositionOnly ? 1 : w.pos) * cfg.dVocab; // logits
  const forward = cfg.nLayers * block + bp * 16 * d + 2 * bv;
  const backward = w.backward ? cfg.nLayers * block + bp * 24 * d + 4 * bv : 0;
  const cached = (w.cachedResiduals ?? 0) * bp * d;
  return 4 * (params + forward + backward + cached);
}

/** Largest batch whose estimate stays under the wasm limit (at least 0). */
export function maxBatchUnderLimit(cfg: GPT2Config, w: Omit<WorkloadShape, 'batch'>, limit = WASM_HEAP_LIMIT_BYTES): number {
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
export function guardMemory(cfg: GPT2Config, w: WorkloadShape, what = 'this run', backend = tf.getBackend()): void {
  if (backend !== 'wasm') return;
  const need = estimateBytes(cfg, w);
  if (need <= WASM_HEAP_LIMIT_BYTES) return;
  const ok = maxBatchUnderLimit(cfg, w);
  const gb = (b: number) => (b / 1e9).toFixed(2);
  throw new Error(
    `${what} needs about ${gb(need)} GB, but the wasm heap tops out near 4 GB and corrupts tensors silently past it ` +
      `(limit ${gb(WASM_HEAP_LIMIT_BYTES)} GB). Lower the batch size from ${w.batch} to at most ${ok}` +
      (ok === 0 ? ' (even batch 1 does not fit: use fewer tokens or a smaller model)' : ' (e.g. --batch ' + Math.max(1, ok) + ')') +
      ', or use a GPU backend.',
  );
}
