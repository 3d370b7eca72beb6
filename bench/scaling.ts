/**
 * Scaling of time and memory with layers, positions and batch, and the largest batch the wasm
 * heap guard lets through. Used by bench/bench.ts; runnable on its own:
 *
 *   npx tsx bench/scaling.ts [--quick] [--backend wasm]
 *
 * Memory is the peak of tfjs tensor bytes during a call (tracked after every kernel), next to the
 * memory guard's estimate for the same call, so the estimate is checked against a measurement.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { estimateBytes, maxBatchUnderLimit, WASM_HEAP_LIMIT_BYTES } from '../src/backend/memory-guard.ts';
import { initBackend } from '../src/backend.ts';
import { configFromHF, type BaseConfig } from '../src/models/config.ts';
import { randomStateDict, type StateDict } from '../src/models/state-dict.ts';
import { HookedTransformer, type MetricFn } from '../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../src/hooks/activation-cache.ts';
import { wasmPeakBytesDuring } from '../src/backend/wasm-peak.ts';

/** Wall and CPU seconds of one call. */
export interface Timing {
  s: number;
  cpu_s: number;
}

/** Run `fn` once and time it (wall and process CPU). */
export function timeOnce<T>(fn: () => T): { result: T } & Timing {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = fn();
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  return { result, s, cpu_s: (cpu.user + cpu.system) / 1e6 };
}

// ---------------------------------------------------------------- kernel probe
/** Per-kernel totals of a profiled call. */
export interface KernelStat {
  kernel: string;
  /** Input shapes (and transpose flags for matmuls), e.g. `[128,768]x[768,3072] tB`. */
  shapes: string;
  calls: number;
  cpu_ms: number;
  wall_ms: number;
}

interface ProbeState {
  /** Per-kernel timing, when timing. */
  stats?: Map<string, KernelStat>;
  /** Peak engine tensor bytes after each kernel, when tracking memory. */
  peak?: number;
}

function bytesOf(t: tf.TensorInfo): number {
  return t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'bool' ? 1 : 4);
}

type KernelConfig = ReturnType<typeof tf.getKernelsForBackend>[number];
let probe: ProbeState | undefined;
let installed: { backend: string; originals: KernelConfig[] } | undefined;

function describe(args: Parameters<KernelConfig['kernelFunc']>[0]): string {
  const shapes = Object.values(args.inputs)
    .filter((x): x is tf.TensorInfo => x != null)
    .map((x) => `[${x.shape.join(',')}]`)
    .join('x');
  const a = (args.attrs ?? {}) as Record<string, unknown>;
  const flags = `${a.transposeA ? ' tA' : ''}${a.transposeB ? ' tB' : ''}`;
  return shapes + flags;
}

/**
 * Wrap every kernel of the active backend so that a probe can record per-kernel CPU and wall time.
 * Idle wrappers cost one `undefined` check. Why wrappers rather than `tf.profile`: `tf.profile`
 * syncs every output (a copy out of the wasm heap) and measures wall time only, which on a shared
 * machine mostly measures the neighbours.
 */
function installProbe(): void {
  const backend = tf.getBackend();
  if (installed?.backend === backend) return;
  uninstallProbe();
  const originals = tf.getKernelsForBackend(backend);
  for (const k of originals) {
    const orig = k.kernelFunc;
    const kernelFunc: KernelConfig['kernelFunc'] = (args) => {
      const p = probe;
      if (!p) return orig(args);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = orig(args);
      if (p.stats) {
        const key = `${k.kernelName} ${describe(args)}`;
        const s = p.stats.get(key) ?? { kernel: k.kernelName, shapes: describe(args), calls: 0, cpu_ms: 0, wall_ms: 0 };
        const c = process.cpuUsage(c0);
        s.calls++;
        s.cpu_ms += (c.user + c.system) / 1000;
        s.wall_ms += performance.now() - t0;
        p.stats.set(key, s);
      }
      if (p.peak !== undefined) {
        // The engine registers the outputs after the kernel returns: add them.
        const outs = (Array.isArray(out) ? out : [out]) as tf.TensorInfo[];
        p.peak = Math.max(p.peak, tf.engine().state.numBytes + outs.reduce((n, o) => n + bytesOf(o), 0));
      }
      return out;
    };
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({ ...k, kernelFunc });
  }
  installed = { backend, originals };
}

/** Put the original kernels back (after {@link installProbe}). */
export function uninstallProbe(): void {
  if (!installed) return;
  for (const k of installed.originals) {
    tf.unregisterKernel(k.kernelName, installed.backend);
    tf.registerKernel(k);
  }
  installed = undefined;
}

/** Run `fn` under the kernel probe: per-kernel CPU/wall totals, sorted by CPU time. */
export function probeKernels<T>(fn: () => T): { result: T; stats: KernelStat[] } {
  installProbe();
  const stats = new Map<string, KernelStat>();
  probe = { stats };
  try {
    const result = fn();
    return { result, stats: [...stats.values()].sort((a, b) => b.cpu_ms - a.cpu_ms) };
  } finally {
    probe = undefined;
  }
}

/**
 * Peak bytes of backend buffers allocated during `fn` above what was live before it.
 * On wasm, buffers are counted where they are allocated (`move`) and freed (`disposeData` once the
 * last reference goes), so tensors sharing a buffer (reshape, clones) count once and buffers a
 * kernel allocates and frees internally are seen. Elsewhere, the engine's tensor-byte count after
 * each kernel (which counts a shared buffer once per tensor).
 */
export function peakBytesDuring<T>(fn: () => T): { result: T; peakBytes: number } {
  if (tf.getBackend() !== 'wasm') {
    installProbe();
    const start = tf.engine().state.numBytes;
    probe = { peak: start };
    try {
      const result = fn();
      return { result, peakBytes: (probe.peak ?? start) - start };
    } finally {
      probe = undefined;
    }
  }
  return wasmPeakBytesDuring(fn);
}

// ---------------------------------------------------------------- workloads
/** The state dict of the first `n` layers of `sd` (same embeddings and final LN). */
export function truncateLayers(sd: StateDict, cfg: BaseConfig, n: number): { sd: StateDict; cfg: BaseConfig } {
  if (n < 1 || n > cfg.nLayers) throw new Error(`layers must be in [1, ${cfg.nLayers}], got ${n}`);
  const out: StateDict = new Map();
  for (const [k, v] of sd) {
    const m = /^h\.(\d+)\./.exec(k);
    if (!m || Number(m[1]) < n) out.set(k, v);
  }
  return { sd: out, cfg: { ...cfg, nLayers: n } };
}

/** Deterministic token ids [batch][pos] in [0, vocab). */
export function benchTokens(batch: number, pos: number, vocab: number, salt = 0): number[][] {
  return Array.from({ length: batch }, (_, b) => Array.from({ length: pos }, (_, i) => (b * 7919 + i * 104729 + salt * 15485863 + 1) % vocab));
}

/**
 * Mean last-position logit difference logit[answer] − logit[wrong] over the batch, as a
 * metric for gradients. `answer`/`wrong` are [batch] ids. Uses a ±1 mask (gather has no gradient
 * on wasm). The returned function works for full and last-position-only logits.
 */
export function logitDiffMetric(answer: number[], wrong: number[], vocab: number): { fn: MetricFn; dispose: () => void } {
  const sign = tf.tidy(() => tf.sub(tf.oneHot(tf.tensor1d(answer, 'int32'), vocab), tf.oneHot(tf.tensor1d(wrong, 'int32'), vocab))); // [batch, vocab]
  const fn: MetricFn = (logits) => {
    const [b, p, v] = logits.shape;
    const last = tf.reshape(tf.slice(logits, [0, p - 1, 0], [b, 1, v]), [b, v]); // [batch, vocab]
    return tf.div(tf.sum(tf.mul(last, sign)), b) as tf.Scalar;
  };
  return { fn, dispose: () => sign.dispose() };
}

/** Forward (full logits) of tokens, synced and freed. */
export function runForward(model: HookedTransformer, tokens: number[][]): void {
  const logits = model.forward(tokens);
  logits.dataSync();
  logits.dispose();
}

/** Forward + backward of the logit difference w.r.t. every blocks.{l}.hook_resid_pre, synced and freed. */
export function runForwardBackward(model: HookedTransformer, tokens: number[][], metric: MetricFn, lastPositionOnly = false): void {
  const names = Array.from({ length: model.cfg.nLayers }, (_, l) => `blocks.${l}.hook_resid_pre`);
  const r = model.runWithCacheAndGrads(tokens, metric, { names, lastPositionOnly });
  r.grads[names[0]].dataSync();
  r.logits.dispose();
  r.value.dispose();
  disposeCache(r.cache, r.grads);
}

// ---------------------------------------------------------------- scaling table
/** One row of the scaling table. */
export interface ScalingRow {
  /** Which axis varies in this row. */
  axis: 'layers' | 'positions' | 'batch';
  layers: number;
  pos: number;
  batch: number;
  forward_s: number | null;
  forward_cpu_s: number | null;
  /** Forward + backward (grads at every resid_pre); null when the memory guard refused it. */
  backward_s: number | null;
  backward_cpu_s: number | null;
  /** Peak memory of forward + backward: this model's weights plus the call's peak of live buffers (MB). */
  peak_mb: number | null;
  /** The memory guard's estimate for the same call (MB). */
  estimate_mb: number;
  /** Why a measurement is missing (the memory guard's refusal). */
  note?: string;
}

/** Grid of the scaling table; the other axes stay at the base workload. */
export interface ScalingGrid {
  layers: number[];
  positions: number[];
  batch: number[];
}

/** Largest batch under the wasm heap guard, per workload, at several token lengths. */
export interface MaxBatchRow {
  pos: number;
  /** Plain forward. */
  forward: number;
  /** Forward + backward with grads at every resid_pre (runWithCacheAndGrads). */
  backward: number;
  /** Gradient sweep caching four components per layer (AtP / RelP over resid_pre, attn_out, mlp_out, z). */
  attribution_sweep: number;
}

/** {@link maxBatchUnderLimit} for the workloads of the benchmark. */
export function maxBatchTable(cfg: BaseConfig, positions: number[]): MaxBatchRow[] {
  return positions
    .filter((p) => p <= cfg.nCtx)
    .map((pos) => ({
      pos,
      forward: maxBatchUnderLimit(cfg, { pos }),
      backward: maxBatchUnderLimit(cfg, { pos, backward: true, cachedResiduals: 2 * cfg.nLayers }),
      attribution_sweep: maxBatchUnderLimit(cfg, { pos, backward: true, cachedResiduals: 2 * 4 * cfg.nLayers }),
    }));
}

/** Options of {@link runScaling}. */
export interface ScalingOptions {
  cfg: BaseConfig;
  /** Weights of the full model; fewer layers use its first blocks. */
  sd: StateDict;
  /** The already-built full model (reused for the position and batch rows). */
  model: HookedTransformer;
  /** Tensor bytes held by `model` (see {@link buildModel}). */
  modelBytes: number;
  base: { batch: number; pos: number };
  grid: ScalingGrid;
  log?: (msg: string) => void;
}

/** Build a model and measure the tensor bytes it holds (parameters and any cached copies such as the transposed unembedding). */
export function buildModel(cfg: BaseConfig, sd: StateDict): { model: HookedTransformer; bytes: number } {
  const before = tf.engine().state.numBytes;
  const model = HookedTransformer.fromStateDict(cfg, sd);
  return { model, bytes: tf.engine().state.numBytes - before };
}

/** Measure one scaling point (one timed forward, one timed forward+backward under the memory probe). */
function measurePoint(model: HookedTransformer, modelBytes: number, batch: number, pos: number, warm: boolean): Omit<ScalingRow, 'axis'> {
  const cfg = model.cfg;
  const tokens = benchTokens(batch, pos, cfg.dVocab, 3);
  const metric = logitDiffMetric(tokens.map((_, b) => b % cfg.dVocab), tokens.map((_, b) => (b + 1) % cfg.dVocab), cfg.dVocab);
  try {
    const row: Omit<ScalingRow, 'axis'> = {
      layers: cfg.nLayers,
      pos,
      batch,
      forward_s: null,
      forward_cpu_s: null,
      backward_s: null,
      backward_cpu_s: null,
      peak_mb: null,
      estimate_mb: estimateBytes(cfg, { batch, pos, backward: true, cachedResiduals: 2 * cfg.nLayers }) / 1e6,
    };
    try {
      if (warm) runForward(model, tokens); // first use of fresh weights packs them (XNNPACK); not counted
      const f = timeOnce(() => runForward(model, tokens));
      row.forward_s = f.s;
      row.forward_cpu_s = f.cpu_s;
      const b = timeOnce(() => peakBytesDuring(() => runForwardBackward(model, tokens, metric.fn)));
      row.backward_s = b.s;
      row.backward_cpu_s = b.cpu_s;
      row.peak_mb = (b.result.peakBytes + modelBytes) / 1e6;
    } catch (err) {
      // The memory guard refuses calls it estimates past the wasm heap: record that, keep going.
      const msg = err instanceof Error ? err.message : String(err);
      if (!msg.includes('wasm heap')) throw err;
      row.note = `refused by the memory guard: ${msg.split('.')[0]}`;
    }
    return row;
  } finally {
    metric.dispose();
  }
}

/** Time and memory of forward and forward+backward along each axis of the grid. */
export function runScaling(o: ScalingOptions): ScalingRow[] {
  const log = o.log ?? (() => {});
  const rows: ScalingRow[] = [];
  for (const n of o.grid.layers) {
    log(`scaling: ${n} layer(s), batch ${o.base.batch} × ${o.base.pos} tokens`);
    if (n === o.cfg.nLayers) {
      rows.push({ axis: 'layers', ...measurePoint(o.model, o.modelBytes, o.base.batch, o.base.pos, false) });
      continue;
    }
    const t = truncateLayers(o.sd, o.cfg, n);
    const m = buildModel(t.cfg, t.sd);
    try {
      rows.push({ axis: 'layers', ...measurePoint(m.model, m.bytes, o.base.batch, o.base.pos, true) });
    } finally {
      m.model.dispose();
    }
  }
  for (const pos of o.grid.positions.filter((p) => p <= o.cfg.nCtx)) {
    log(`scaling: ${pos} positions`);
    rows.push({ axis: 'positions', ...measurePoint(o.model, o.modelBytes, o.base.batch, pos, false) });
  }
  for (const batch of o.grid.batch) {
    log(`scaling: batch ${batch}`);
    rows.push({ axis: 'batch', ...measurePoint(o.model, o.modelBytes, batch, o.base.pos, false) });
  }
  return rows;
}

/** The scaling rows as a fixed-width text table. */
export function formatScaling(rows: ScalingRow[]): string {
  const head = ['axis', 'layers', 'pos', 'batch', 'fwd s', 'fwd cpu s', 'fwd+bwd s', 'fwd+bwd cpu s', 'peak MB', 'guard est. MB'];
  const f = (x: number | null, d: number) => (x === null ? 'refused' : x.toFixed(d));
  const body = rows.map((r) => [
    r.axis,
    String(r.layers),
    String(r.pos),
    String(r.batch),
    f(r.forward_s, 3),
    f(r.forward_cpu_s, 3),
    f(r.backward_s, 3),
    f(r.backward_cpu_s, 3),
    f(r.peak_mb, 0),
    r.estimate_mb.toFixed(0),
  ]);
  return table(head, body);
}

/** The max-batch rows as a text table. */
export function formatMaxBatch(rows: MaxBatchRow[]): string {
  return table(
    ['pos', 'forward', 'fwd+bwd', 'AtP/RelP sweep'],
    rows.map((r) => [String(r.pos), String(r.forward), String(r.backward), String(r.attribution_sweep)]),
  );
}

/** A right-aligned text table. */
export function table(head: string[], body: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(w[i])).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

/** Default grids: quick keeps the run short; the full grid doubles along each axis. */
export function defaultGrid(cfg: BaseConfig, quick: boolean): ScalingGrid {
  const L = cfg.nLayers;
  const layers = quick ? [Math.max(1, L >> 2), Math.max(1, L >> 1), L] : [1, 2, 4, 8, L].filter((n) => n <= L);
  return {
    layers: [...new Set(layers)].sort((a, b) => a - b),
    positions: quick ? [8, 32] : [4, 8, 16, 32, 64],
    batch: quick ? [1, 16] : [1, 2, 4, 16, 32],
  };
}

/** The wasm heap limit the guard uses, in MB. */
export const GUARD_LIMIT_MB = WASM_HEAP_LIMIT_BYTES / 1e6;

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const bi = process.argv.indexOf('--backend');
  const backend = await initBackend(bi >= 0 ? process.argv[bi + 1] : undefined);
  const cfgPath = fileURLToPath(new URL('../test/fixtures/gpt2-tokenizer/config.json', import.meta.url));
  const cfg = configFromHF(JSON.parse(readFileSync(cfgPath, 'utf8')));
  const log = (m: string) => process.stderr.write(`[scaling] ${m}\n`);
  log(`backend ${backend}; building random GPT-2 small weights`);
  const sd = randomStateDict(cfg, { seed: 0 });
  const { model, bytes } = buildModel(cfg, sd);
  try {
    runForward(model, benchTokens(8, 16, cfg.dVocab)); // warm-up
    const rows = runScaling({ cfg, sd, model, modelBytes: bytes, base: { batch: 8, pos: 16 }, grid: defaultGrid(cfg, quick), log });
    process.stdout.write(formatScaling(rows) + '\n\n');
    process.stdout.write(`largest batch under the wasm heap guard (${GUARD_LIMIT_MB.toFixed(0)} MB):\n`);
    process.stdout.write(formatMaxBatch(maxBatchTable(cfg, [16, 64, 256, 1024])) + '\n');
  } finally {
    model.dispose();
    uninstallProbe();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
