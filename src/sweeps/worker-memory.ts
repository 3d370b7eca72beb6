/**
 * How many workers fit: each holds its own model copy (a streamed model: one block) and its own
 * forward buffers, so N workers need about N × (weights + one shard's peak). The per-worker peak comes from the memory guard's
 * estimate (capped by the wasm heap limit each thread's heap obeys).
 */
import { freemem } from 'node:os';
import type { ModelConfig } from '../models/config.ts';
import { estimateBytes, heapLimitBytes, maxBatchUnderLimit } from '../backend/memory-guard.ts';

/** Estimated peak bytes of one worker running activation-patching / gradient shards. */
export function workerBytes(cfg: ModelConfig, pos: number, batch = 512, streamed = false): number {
  const fit = maxBatchUnderLimit(cfg, { pos, lastPositionOnly: true, streamed });
  const seqs = Math.max(1, Math.min(batch, fit > 0 ? fit : 1));
  const forward = estimateBytes(cfg, { batch: seqs, pos, lastPositionOnly: true, cachedResiduals: 3 * cfg.nLayers, streamed });
  return Math.min(forward, heapLimitBytes()); // weights are inside the estimate
}

/** The number of workers to start: `requested`, lowered (with a note) when their copies do not fit in `free` bytes. */
export function capWorkers(requested: number, cfg: ModelConfig, pos: number, batch?: number, free = freemem(), streamed = false): { workers: number; note?: string } {
  const per = workerBytes(cfg, pos, batch, streamed);
  const fit = Math.max(1, Math.floor((0.8 * free) / per));
  if (requested <= fit) return { workers: requested };
  const gb = (b: number) => (b / 1e9).toFixed(2);
  return {
    workers: fit,
    note: `--workers ${requested} lowered to ${fit}: each worker holds its own model and buffers (about ${gb(per)} GB), and ${gb(free)} GB of memory is free`,
  };
}
