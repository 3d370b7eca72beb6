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
}

/** Floats of activations one block creates for a batch (forward tape). */
function blockFloats(cfg: GPT2Config, batch: number, pos: number): number {
  const bp = batch * pos;
  const attn = batch * cfg.nHeads * pos * pos * 3; // scores, masked scores, pattern
  return bp * (cfg.dModel * 14 + cfg.dMlp * 4) + attn;
}

/** Estimated peak bytes of a forward (and backward) of `cfg` on a workload, weights included. */
export function estimateBytes(cfg: GPT2Config, w: WorkloadShape): number {
  const params =
    cfg.dVocab * cfg.dModel * 2 + cfg.nCtx * cfg.dModel + cfg.nLayers * (12 * cfg.dModel * cfg.dModel + 2 * cfg.dModel * cfg.dMlp);
  const logits = w.batch * w.pos * cfg.dVocab * (w.backward ? 4 : 2);
  const layers = w.backward ? cfg.nLayers * 2 : 2; // backward keeps every block's tape plus grads
  const acts = blockFloats(cfg, w.batch, w.pos) * layers;
  const cached = (w.cachedResiduals ?? 0) * w.batch * w.pos * cfg.dModel;
  return 4 * (params + logits + acts + cached);
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
