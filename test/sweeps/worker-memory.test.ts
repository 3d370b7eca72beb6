/**
 * Workers of a streamed model each hold one block (they stream from the same files), not a model:
 * the worker cap counts them that way. Checked on the Llama-3-8B shape, whose whole model cannot
 * fit a wasm heap at all.
 */
import { describe, expect, it } from 'vitest';
import { configFromHF } from '../../src/models/architectures/index.ts';
import { CHECKPOINT_SHAPES } from '../../src/models/random-checkpoint.ts';
import { estimateBytes } from '../../src/backend/memory-guard.ts';
import { capWorkers, workerBytes } from '../../src/sweeps/worker-memory.ts';

const LLAMA3_8B = configFromHF(CHECKPOINT_SHAPES['llama3-8b'].config);

describe('workers on a streamed model', () => {
  it('cost one block each, not one model each', () => {
    const blockWeights = 4 * (4096 * (32 + 2 * 8) * 128 + 32 * 128 * 4096 + 3 * 4096 * 14336); // q|k|v, o, MLP: F32
    const eight = estimateBytes(LLAMA3_8B, { batch: 8, pos: 16, backward: true, lastPositionOnly: true, streamed: true });
    expect(eight).toBeGreaterThan(blockWeights); // a block and its buffers...
    expect(eight).toBeLessThan(2.5 * blockWeights); // ...not the 32 GB of F32 weights
    // A worker sizes its batches to fill at most one heap.
    expect(workerBytes(LLAMA3_8B, 16, 512, true)).toBeLessThanOrEqual(3.5e9);
    // The whole model would need far more than a wasm heap: it never runs resident.
    expect(estimateBytes(LLAMA3_8B, { batch: 1, pos: 16, lastPositionOnly: true })).toBeGreaterThan(30e9);
    // Each streamed worker counts at most one heap: with 9 GB free two fit, eight do not.
    expect(capWorkers(2, LLAMA3_8B, 16, 512, 9e9, true)).toEqual({ workers: 2 });
    expect(capWorkers(8, LLAMA3_8B, 16, 512, 9e9, true).workers).toBe(2);
  });
});
