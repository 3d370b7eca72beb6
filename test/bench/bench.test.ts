/**
 * Smoke test of the benchmark on a TINY model: the JSON field set, tensor hygiene, and the
 * numbers the benchmark derives (FLOPs, parameter count, fast vs. naive sweep) checked against
 * independent counts. Never timed: timings are the benchmark's job, not the test's.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { BaseConfig } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import {
  benchData,
  fastSweep,
  forwardBackwardFlops,
  forwardFlops,
  naiveSweep,
  paramCount,
  RESULT_FIELDS,
  runBench,
  type BenchOptions,
} from '../../bench/bench.ts';
import { logitDiffMetric, peakBytesDuring, probeKernels, runForward, runForwardBackward, uninstallProbe, type KernelStat } from '../../bench/scaling.ts';

const TINY: BaseConfig = { nLayers: 2, nHeads: 2, dModel: 16, dHead: 8, dMlp: 64, nCtx: 16, dVocab: 50, eps: 1e-5, act: 'gelu_new' };

function options(over: Partial<BenchOptions> = {}): BenchOptions {
  return {
    quick: true,
    cfg: TINY,
    batch: 2,
    pos: 5,
    reps: 1,
    torch: false,
    torchThreads: [1],
    scaling: { layers: [1, 2], positions: [3], batch: [1] },
    matmul: [[8, 8, 16]],
    profile: true,
    seed: 3,
    log: () => {},
    ...over,
  };
}

/** Matmul FLOPs read off the kernels that actually ran: 2·m·k·n per BatchMatMul, from its input shapes. */
function matmulFlopsOf(stats: KernelStat[]): number {
  let total = 0;
  for (const s of stats) {
    if (s.kernel !== 'BatchMatMul' && s.kernel !== '_FusedMatMul') continue;
    const shapes = [...s.shapes.matchAll(/\[([\d,]+)\]/g)].map((m) => m[1].split(',').map(Number));
    const [a, b] = shapes;
    const tA = s.shapes.includes(' tA');
    const tB = s.shapes.includes(' tB');
    const batch = a.slice(0, -2).reduce((x, y) => x * y, 1);
    const m = tA ? a[a.length - 1] : a[a.length - 2];
    const k = tA ? a[a.length - 2] : a[a.length - 1];
    const n = tB ? b[b.length - 2] : b[b.length - 1];
    total += s.calls * 2 * batch * m * k * n;
  }
  return total;
}

describe('bench', () => {
  it('returns every documented field, JSON-serialisable, and frees its tensors', async () => {
    const before = tf.memory().numTensors;
    const r = await runBench(options({ patchLayers: 2 }));
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(r).sort()).toEqual([...RESULT_FIELDS, 'profile'].sort());
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(r.patches).toBe(2 * 5);
    expect(r.patch_layers).toEqual([0, 1]);
    expect(r.max_abs_diff_fast_vs_naive).toBeLessThanOrEqual(1e-4);
    expect(r.scaling.map((x) => [x.axis, x.layers, x.pos, x.batch])).toEqual([
      ['layers', 1, 5, 2],
      ['layers', 2, 5, 2],
      ['positions', 2, 3, 2],
      ['batch', 2, 5, 1],
    ]);
    expect(r.matmul.map((m) => m.name)).toEqual(['plain', 'transposeA', 'transposeB']);
    expect(r.targets.length).toBeGreaterThan(0);
    expect(r.torch.available).toBe(false);
    expect(r.vs_torch).toBeNull();
    for (const k of ['forward_s', 'backward_s', 'patch_naive_s', 'patch_fast_s', 'atp_s', 'relp_s', 'peak_rss_mb'] as const) {
      expect(r[k]).toBeGreaterThan(0);
    }
  });

  it('a partial fast sweep (layers [0, k)) gives the naive values of those layers', async () => {
    const cfg = { ...TINY, nLayers: 3 };
    const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 5 }));
    try {
      const data = benchData(cfg, 3, 6);
      const before = tf.memory().numTensors;
      const naive = naiveSweep(model, data, [0, 1]);
      const fast = await fastSweep(model, data, 2);
      expect(tf.memory().numTensors).toBe(before);
      expect(fast.values).toHaveLength(2);
      fast.values.forEach((row, l) => row.forEach((v, p) => expect(Math.abs(v - naive[l][p])).toBeLessThanOrEqual(1e-4)));
      // The corruption changes the run: some patch moves the metric.
      expect(Math.max(...naive.flat().map(Math.abs))).toBeGreaterThan(1e-3);
    } finally {
      model.dispose();
    }
  });

  it('FLOP counts equal the matmuls the kernels actually ran', () => {
    const model = HookedTransformer.fromStateDict(TINY, randomStateDict(TINY, { seed: 1 }));
    const data = benchData(TINY, 2, 5);
    const metric = logitDiffMetric(data.answerIds, data.wrongIds, TINY.dVocab);
    try {
      const f = probeKernels(() => runForward(model, data.corrupt));
      expect(matmulFlopsOf(f.stats)).toBe(forwardFlops(TINY, 2, 5).total);
      const b = probeKernels(() => runForwardBackward(model, data.corrupt, metric.fn));
      expect(matmulFlopsOf(b.stats)).toBe(forwardBackwardFlops(TINY, 2, 5));
    } finally {
      uninstallProbe();
      metric.dispose();
      model.dispose();
    }
  });

  it.runIf(tf.getBackend() === 'wasm')('peak memory counts each live buffer once, at its peak', () => {
    const r = peakBytesDuring(() => {
      const a = tf.zeros([1000]); // 4000 bytes
      const shared = tf.reshape(a, [10, 100]); // same buffer
      const b = tf.zeros([500]); // 2000: peak 6000
      tf.dispose([a, shared]);
      const c = tf.zeros([200]); // 800 while 2000 live
      tf.dispose([b, c]);
      return 7;
    });
    expect(r).toEqual({ result: 7, peakBytes: 6000 });
  });

  it('parameter count equals the size of the state dict', () => {
    const sd = randomStateDict(TINY, { seed: 0 });
    let n = 0;
    for (const v of sd.values()) n += v.data.length;
    expect(paramCount(TINY)).toBe(n);
  });
});
