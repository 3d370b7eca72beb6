/**
 * `npm run bench [-- --quick] [--json] [--backend wasm]`: speed and memory of relp on a
 * GPT-2-small-shaped model (the real GPT-2 config, random weights), batch 8 × 16 tokens.
 *
 * Reports forward / backward time and GFLOP/s, the naive vs. exact-fast activation patching
 * sweep over the same patches (and their max abs difference), AtP and RelP sweeps over
 * resid_pre, attn_out, mlp_out and z, wasm matmul GFLOP/s, a scaling table, the largest batch
 * under the wasm heap guard, and (when /usr/bin/python3 has torch) the same forward, backward and
 * naive sweep in PyTorch with ratios from the same run. Every time is given as wall seconds and
 * as process CPU seconds: on a shared machine CPU time is the steadier of the two.
 *
 * Logs go to stderr. With --json the last line of stdout is one JSON object ({@link BenchResult});
 * the same object is written to bench/results.json.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { initBackend } from '../src/backend.ts';
import { configFromHF, type BaseConfig } from '../src/models/config.ts';
import { randomStateDict } from '../src/models/state-dict.ts';
import { HookedTransformer } from '../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../src/hooks/activation-cache.ts';
import { activationPatch } from '../src/patching/activation-patching.ts';
import { ATP, attributionPatch, relpMethod } from '../src/patching/attribution-patching.ts';
import type { PatchingData } from '../src/patching/data.ts';
import type { Progress } from '../src/patching/progress.ts';
import {
  benchTokens,
  buildModel,
  defaultGrid,
  formatMaxBatch,
  formatScaling,
  GUARD_LIMIT_MB,
  logitDiffMetric,
  maxBatchTable,
  probeKernels,
  runForward,
  runForwardBackward,
  runScaling,
  table,
  timeOnce,
  uninstallProbe,
  type KernelStat,
  type MaxBatchRow,
  type ScalingGrid,
  type ScalingRow,
  type Timing,
} from './scaling.ts';

import { formatSweepReport, runSweepBench, type SweepBenchResult } from './sweeps.ts';
import { formatEdgeReport, runEdgeBench, type EdgeBenchRow } from './edges.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The real GPT-2 small config.json. */
export const GPT2_CONFIG_PATH = join(ROOT, 'test/fixtures/gpt2-tokenizer/config.json');
/** The PyTorch side. */
export const TORCH_SCRIPT = join(ROOT, 'bench/torch_bench.py');
/** Python with torch (Debian python3-torch). */
export const PYTHON = '/usr/bin/python3';

/** Components of the AtP / RelP sweep. */
export const ATTRIBUTION_COMPONENTS = ['resid_pre', 'attn_out', 'mlp_out', 'z'] as const;

/** What to run. */
export interface BenchOptions {
  /** Short run (subset of patching layers, fewer repetitions, small scaling grid). */
  quick: boolean;
  /** tfjs backend (default: relp's automatic choice / RELP_BACKEND). */
  backend?: string;
  /** Model config; default: the real GPT-2 small config. */
  cfg?: BaseConfig;
  batch: number;
  pos: number;
  /** Patching sweeps cover layers [0, patchLayers) × every position; default: all layers (quick: 1). */
  patchLayers?: number;
  /** Timed repetitions of forward / backward (median reported); default 5 (quick 2). */
  reps?: number;
  /** Run the PyTorch side when torch is importable. */
  torch: boolean;
  /** Torch thread counts to report (1 is the fair single-thread comparison). */
  torchThreads: number[];
  /** Scaling grid, or false to skip. Default grid depends on `quick`. */
  scaling: ScalingGrid | false;
  /** Matmul shapes [m, k, n] for the wasm matmul benchmark, or false to skip. */
  matmul: [number, number, number][] | false;
  /** Per-kernel CPU profile of one forward and one forward+backward. */
  profile: boolean;
  seed: number;
  log: (msg: string) => void;
}

/** One matmul measurement. */
export interface MatmulRow {
  name: string;
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
  s: number;
  cpu_s: number;
  gflops: number;
  gflops_cpu: number;
}

/** The PyTorch side, per thread count. */
export interface TorchRun {
  threads: number;
  forward_s: number;
  forward_cpu_s: number;
  backward_s: number;
  backward_cpu_s: number;
  patch_naive_s?: number;
  patch_naive_cpu_s?: number;
  naive_patches?: number;
}

/** A target of issue 9 and whether it is met (by wall time and by CPU time). */
export interface TargetCheck {
  name: string;
  target: string;
  wall: number | null;
  cpu: number | null;
  pass_wall: boolean | null;
  pass_cpu: boolean | null;
}

/** The benchmark's JSON result (the last stdout line with --json). */
export interface BenchResult {
  version: string;
  backend: string;
  tfjs_version: string;
  node: string;
  cpus: number;
  cpu_model: string;
  /** 1-minute load average before and after the run: above `cpus`, times are inflated. */
  load_avg_start: number;
  load_avg_end: number;
  quick: boolean;
  batch: number;
  pos: number;
  model: { n_layers: number; n_heads: number; d_model: number; d_mlp: number; d_vocab: number; params: number };
  /** Matmul FLOPs of one forward with full logits (GFLOP). */
  forward_gflop: number;
  forward_s: number;
  forward_cpu_s: number;
  forward_gflops: number;
  forward_gflops_cpu: number;
  /** Forward + backward: gradient of the mean last-position logit diff w.r.t. every resid_pre (full logits). */
  backward_s: number;
  backward_cpu_s: number;
  backward_gflop: number;
  backward_gflops: number;
  backward_gflops_cpu: number;
  /** The same with only the last position unembedded (what a gradient sweep needs). */
  backward_lastpos_s: number;
  backward_lastpos_cpu_s: number;
  patch_layers: number[];
  patch_positions: number;
  patches: number;
  patch_naive_s: number;
  patch_naive_cpu_s: number;
  patch_fast_s: number;
  patch_fast_cpu_s: number;
  patch_speedup: number;
  patch_speedup_cpu: number;
  max_abs_diff_fast_vs_naive: number;
  attribution_components: string[];
  /** AtP sweep over all components (shared clean run included). */
  atp_s: number;
  atp_cpu_s: number;
  /** RelP sweep over all components (shared clean run included). */
  relp_s: number;
  relp_cpu_s: number;
  relp_over_forward: number;
  relp_over_forward_cpu: number;
  matmul: MatmulRow[];
  matmul_plain_gflops: number | null;
  matmul_transpose_a_gflops: number | null;
  matmul_transpose_b_gflops: number | null;
  scaling: ScalingRow[];
  max_batch_under_wasm_guard: MaxBatchRow[];
  wasm_guard_limit_mb: number;
  torch: { available: boolean; reason?: string; version?: string; runs: TorchRun[] };
  /** tfjs / torch (1 thread) ratios from this run; null without torch. */
  vs_torch: {
    forward: number;
    forward_cpu: number;
    backward: number;
    backward_cpu: number;
    patch_naive: number | null;
    patch_naive_cpu: number | null;
  } | null;
  targets: TargetCheck[];
  profile?: { forward: KernelStat[]; backward: KernelStat[] };
  peak_rss_mb: number;
  total_s: number;
}

/** Keys every result carries (the JSON field set; `profile` only with --profile). */
export const RESULT_FIELDS = [
  'version', 'backend', 'tfjs_version', 'node', 'cpus', 'cpu_model', 'load_avg_start', 'load_avg_end', 'quick', 'batch', 'pos', 'model',
  'forward_gflop', 'forward_s', 'forward_cpu_s', 'forward_gflops', 'forward_gflops_cpu',
  'backward_s', 'backward_cpu_s', 'backward_gflop', 'backward_gflops', 'backward_gflops_cpu', 'backward_lastpos_s', 'backward_lastpos_cpu_s',
  'patch_layers', 'patch_positions', 'patches', 'patch_naive_s', 'patch_naive_cpu_s', 'patch_fast_s', 'patch_fast_cpu_s',
  'patch_speedup', 'patch_speedup_cpu', 'max_abs_diff_fast_vs_naive',
  'attribution_components', 'atp_s', 'atp_cpu_s', 'relp_s', 'relp_cpu_s', 'relp_over_forward', 'relp_over_forward_cpu',
  'matmul', 'matmul_plain_gflops', 'matmul_transpose_a_gflops', 'matmul_transpose_b_gflops',
  'scaling', 'max_batch_under_wasm_guard', 'wasm_guard_limit_mb', 'torch', 'vs_torch', 'targets', 'peak_rss_mb', 'total_s',
] as const satisfies readonly (keyof BenchResult)[];

// ---------------------------------------------------------------- FLOPs
/**
 * Matmul FLOPs (2 per multiply-add) of one GPT-2 forward on [batch, pos] tokens.
 * Elementwise ops, LayerNorm and softmax are left out (they are < 1% of the count).
 */
export function forwardFlops(cfg: BaseConfig, batch: number, pos: number, lastPositionOnly = false): { total: number; attention: number } {
  const n = batch * pos;
  const { dModel: d, dMlp: m, nHeads: h, dHead: dh, nLayers: L, dVocab: v } = cfg;
  const linear = 2 * n * (d * 3 * d + d * d + 2 * d * m); // qkv, out proj, mlp in/out
  const attention = 2 * 2 * batch * h * pos * pos * dh; // q·kᵀ and pattern·v
  const unembed = 2 * batch * (lastPositionOnly ? 1 : pos) * d * v;
  return { total: L * (linear + attention) + unembed, attention: L * attention };
}

/**
 * Matmul FLOPs of forward + backward when gradients are taken w.r.t. activations only (weights
 * are constants): every linear layer costs one more matmul (dX), the two attention products two
 * (both operands are activations).
 */
export function forwardBackwardFlops(cfg: BaseConfig, batch: number, pos: number, lastPositionOnly = false): number {
  const f = forwardFlops(cfg, batch, pos, lastPositionOnly);
  return 2 * f.total + f.attention;
}

/** Number of parameters (weights tied: wte counted once). */
export function paramCount(cfg: BaseConfig): number {
  const { dModel: d, dMlp: m, nLayers: L } = cfg;
  return cfg.dVocab * d + cfg.nCtx * d + L * (4 * d + 3 * d * d + 3 * d + d * d + d + d * m + m + m * d + d) + 2 * d;
}

// ---------------------------------------------------------------- timing helpers
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Median wall and CPU seconds of `reps` runs of `fn`. */
function timeMedian(fn: () => void, reps: number): Timing {
  const runs = Array.from({ length: reps }, () => timeOnce(fn));
  return { s: median(runs.map((r) => r.s)), cpu_s: median(runs.map((r) => r.cpu_s)) };
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<{ result: T } & Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const c = process.cpuUsage(c0);
  return { result, s: (performance.now() - t0) / 1000, cpu_s: (c.user + c.system) / 1e6 };
}

function cpuNow(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

// ---------------------------------------------------------------- data
/**
 * IOI-shaped patching data from deterministic ids: corrupt prompts differ from clean ones at two
 * positions (about 20% and 65% into the prompt, like the subject/indirect-object names of IOI).
 */
export function benchData(cfg: BaseConfig, batch: number, pos: number): PatchingData {
  const v = cfg.dVocab;
  const clean = benchTokens(batch, pos, v);
  const changed = new Set([Math.floor(pos * 0.2), Math.floor(pos * 0.65)]);
  const corrupt = clean.map((row, b) => row.map((id, i) => (changed.has(i) ? (id + 1 + ((b * 31 + i * 17) % (v - 1))) % v : id)));
  return {
    pairs: [],
    clean,
    corrupt,
    answerIds: clean.map((_, b) => (b * 101 + 7) % v),
    wrongIds: clean.map((_, b) => (b * 211 + 13) % v),
    pos,
  };
}

// ---------------------------------------------------------------- patching sweeps
/** Mean last-position logit difference of a logits tensor [batch, pos, vocab], computed in JS. */
function meanLogitDiff(logits: tf.Tensor3D, data: PatchingData): number {
  const [b, p, v] = logits.shape;
  const last = tf.tidy(() => tf.slice(logits, [0, p - 1, 0], [b, 1, v]));
  const x = last.dataSync();
  last.dispose();
  let s = 0;
  for (let i = 0; i < b; i++) s += x[i * v + data.answerIds[i]] - x[i * v + data.wrongIds[i]];
  return s / b;
}

/**
 * The naive sweep: one full forward (full logits) per patch, the way a notebook does it. For each
 * layer and position, the corrupt run's blocks.{l}.hook_resid_pre at that position is replaced by
 * the clean run's; the value is the normalised logit difference (0 = corrupt, 1 = clean).
 * Returns values [layer][pos] for `layers`.
 */
export function naiveSweep(model: HookedTransformer, data: PatchingData, layers: number[]): number[][] {
  const names = layers.map((l) => `blocks.${l}.hook_resid_pre`);
  const cleanRun = model.runWithCache(data.clean, { names });
  try {
    const ldClean = meanLogitDiff(cleanRun.logits, data);
    cleanRun.logits.dispose();
    const corruptLogits = model.forward(data.corrupt);
    const ldCorrupt = meanLogitDiff(corruptLogits, data);
    corruptLogits.dispose();
    return layers.map((l, i) =>
      Array.from({ length: data.pos }, (_, p) => {
        const src = cleanRun.cache[names[i]]; // [batch, pos, d_model]
        const onehot = new Float32Array(data.pos);
        onehot[p] = 1;
        const keep = tf.tensor3d(onehot.map((x) => 1 - x), [1, data.pos, 1]);
        const put = tf.tensor3d(onehot, [1, data.pos, 1]);
        const logits = model.runWithHooks(data.corrupt, [{ name: names[i], fn: (x) => tf.add(tf.mul(x, keep), tf.mul(src, put)) }]);
        const ld = meanLogitDiff(logits, data);
        tf.dispose([logits, keep, put]);
        return (ld - ldCorrupt) / (ldClean - ldCorrupt);
      }),
    );
  } finally {
    disposeCache(cleanRun.cache);
    cleanRun.logits.dispose();
  }
}

class StopSweep extends Error {}

/**
 * The exact fast sweep ({@link activationPatch} over resid_pre) restricted to layers [0, k).
 * activationPatch sweeps layers in order and checkpoints each finished layer, so for k < n_layers
 * the time is taken when layer k−1 is done, the run is stopped at the next progress tick, and the
 * values of layers [0, k) are read from its checkpoint. Layers [0, k) are the slowest layers for
 * the fast path (it resumes at the patched layer), so a partial sweep understates its speed.
 */
export async function fastSweep(model: HookedTransformer, data: PatchingData, k: number): Promise<{ values: number[][] } & Timing> {
  const L = model.cfg.nLayers;
  const need = k * data.pos;
  const dir = k < L ? mkdtempSync(join(tmpdir(), 'relp-bench-')) : undefined;
  const checkpointPath = dir ? join(dir, 'sweep.json') : undefined;
  let done = 0;
  let end: Timing | undefined;
  const c0 = cpuNow();
  const t0 = performance.now();
  const progress: Progress = {
    start() {},
    increment(n = 1) {
      if (done >= need) throw new StopSweep('benchmark subset done');
      done += n;
      if (done >= need) end = { s: (performance.now() - t0) / 1000, cpu_s: cpuNow() - c0 };
    },
    stop() {},
  };
  try {
    const r = await activationPatch(model, data, { components: ['resid_pre'], progress, checkpointPath });
    const grid = r.scores.resid_pre?.values as number[][];
    return { values: grid.slice(0, k), s: (performance.now() - t0) / 1000, cpu_s: cpuNow() - c0 };
  } catch (err) {
    if (!(err instanceof StopSweep) || !end || !checkpointPath) throw err;
    const ckpt = JSON.parse(readFileSync(checkpointPath, 'utf8')) as { done: Record<string, number[]> };
    const values = Array.from({ length: k }, (_, l) => {
      const v = ckpt.done[`resid_pre:${l}`];
      if (!v || v.length !== data.pos) throw new Error(`fast sweep checkpoint lacks layer ${l}`);
      return v;
    });
    return { values, ...end };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- matmul
/** GFLOP/s of plain and transposed matmuls [m,k]·[k,n] on the active backend. */
export function matmulBench(shapes: [number, number, number][], reps: number): MatmulRow[] {
  const rows: MatmulRow[] = [];
  for (const [m, k, n] of shapes) {
    const a = tf.randomNormal([m, k]) as tf.Tensor2D;
    const b = tf.randomNormal([k, n]) as tf.Tensor2D;
    const aT = tf.transpose(a) as tf.Tensor2D; // stored [k, m]
    const bT = tf.transpose(b) as tf.Tensor2D; // stored [n, k]
    const cases: [string, boolean, boolean, () => tf.Tensor][] = [
      ['plain', false, false, () => tf.matMul(a, b)],
      ['transposeA', true, false, () => tf.matMul(aT, b, true, false)],
      ['transposeB', false, true, () => tf.matMul(a, bT, false, true)],
    ];
    for (const [name, tA, tB, f] of cases) {
      const run = () => {
        const y = f();
        y.dataSync();
        y.dispose();
      };
      run(); // warm-up (packs the weights for XNNPACK)
      const t = timeMedian(run, reps);
      const fl = 2 * m * k * n;
      rows.push({ name, m, k, n, transposeA: tA, transposeB: tB, s: t.s, cpu_s: t.cpu_s, gflops: fl / t.s / 1e9, gflops_cpu: fl / t.cpu_s / 1e9 });
    }
    tf.dispose([a, b, aT, bT]);
  }
  return rows;
}

// ---------------------------------------------------------------- torch
/** Whether /usr/bin/python3 can import torch; the reason when not. */
export function torchStatus(): { available: boolean; reason?: string; version?: string } {
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return { available: false, reason: `${PYTHON} cannot be run (${r.error.message})` };
  if (r.status !== 0) return { available: false, reason: `${PYTHON} has no torch (${(r.stderr || '').trim().split('\n').pop()})` };
  return { available: true, version: r.stdout.trim() };
}

/** Run bench/torch_bench.py with `threads` threads (environment and torch.set_num_threads). */
function runTorch(o: BenchOptions, threads: number, naiveLayers: number[], reps: number, configPath: string): TorchRun {
  const n = String(threads);
  const args = [TORCH_SCRIPT, '--config', configPath, '--batch', String(o.batch), '--pos', String(o.pos), '--threads', n, '--reps', String(reps), '--naive-layers', naiveLayers.join(',')];
  const r = spawnSync(PYTHON, args, {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n },
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`torch_bench.py (${threads} thread(s)) failed with exit code ${r.status}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const run = JSON.parse(last) as TorchRun & Record<string, unknown>;
  for (const [k, v] of Object.entries(run)) if (typeof v === 'number') run[k] = round(v);
  return run;
}

// ---------------------------------------------------------------- the benchmark
function versionOf(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function round(x: number, digits = 4): number {
  return Number.isFinite(x) ? Number(x.toPrecision(digits)) : x;
}

function roundN(x: number | null): number | null {
  return x === null ? null : round(x);
}

function check(name: string, target: string, wall: number | null, cpu: number | null, ok: (x: number) => boolean): TargetCheck {
  return { name, target, wall, cpu, pass_wall: wall === null ? null : ok(wall), pass_cpu: cpu === null ? null : ok(cpu) };
}

/**
 * Run the benchmark and return its result (no files written, nothing printed but `log`).
 * The caller keeps ownership of the tfjs backend; every tensor made here is freed.
 */
export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const t0 = performance.now();
  const loadStart = loadavg()[0];
  const backend = await initBackend(o.backend);
  const cfg = o.cfg ?? configFromHF(JSON.parse(readFileSync(GPT2_CONFIG_PATH, 'utf8')));
  const L = cfg.nLayers;
  const reps = o.reps ?? (o.quick ? 2 : 5);
  const K = Math.min(L, Math.max(1, o.patchLayers ?? (o.quick ? 1 : L)));
  const log = o.log;
  if (o.pos > cfg.nCtx) throw new Error(`--pos ${o.pos} exceeds the model's context of ${cfg.nCtx}`);
  log(`backend ${backend}, ${cpus().length} cpu(s), load ${loadStart.toFixed(1)}; random weights for ${L} layers × d_model ${cfg.dModel}`);
  const sd = randomStateDict(cfg, { seed: o.seed });
  const { model, bytes: modelBytes } = buildModel(cfg, sd);
  const data = benchData(cfg, o.batch, o.pos);
  const metric = logitDiffMetric(data.answerIds, data.wrongIds, cfg.dVocab);
  try {
    // Forward and backward.
    runForward(model, data.corrupt); // warm-up: XNNPACK packs each weight on first use
    log(`forward (${reps} reps)`);
    const fwd = timeMedian(() => runForward(model, data.corrupt), reps);
    log(`forward ${fwd.s.toFixed(3)} s (cpu ${fwd.cpu_s.toFixed(3)} s); forward+backward (${reps} reps)`);
    runForwardBackward(model, data.corrupt, metric.fn);
    const bwd = timeMedian(() => runForwardBackward(model, data.corrupt, metric.fn), reps);
    const bwdLast = timeMedian(() => runForwardBackward(model, data.corrupt, metric.fn, true), Math.max(1, reps >> 1));
    log(`forward+backward ${bwd.s.toFixed(3)} s (cpu ${bwd.cpu_s.toFixed(3)} s), last position only ${bwdLast.s.toFixed(3)} s`);

    // Activation patching: naive vs. fast over the same patches.
    const layers = Array.from({ length: K }, (_, l) => l);
    log(`naive patching sweep: ${K} layer(s) × ${o.pos} positions = ${K * o.pos} full forwards`);
    const naive = timeOnce(() => naiveSweep(model, data, layers));
    log(`naive ${naive.s.toFixed(2)} s (cpu ${naive.cpu_s.toFixed(2)} s); fast exact sweep (activationPatch)`);
    const fast = await fastSweep(model, data, K);
    let maxDiff = 0;
    layers.forEach((l) => fast.values[l].forEach((v, p) => (maxDiff = Math.max(maxDiff, Math.abs(v - naive.result[l][p])))));
    log(`fast ${fast.s.toFixed(2)} s (cpu ${fast.cpu_s.toFixed(2)} s), max |fast − naive| = ${maxDiff.toExponential(2)}`);

    // AtP and RelP over all components. Per-method CPU time from the progress ticks (one per pass).
    log(`AtP + RelP sweep over ${ATTRIBUTION_COMPONENTS.join(', ')}`);
    const marks: number[] = [];
    const attrProgress: Progress = { start: () => marks.push(cpuNow()), increment: () => marks.push(cpuNow()), stop() {} };
    const c0 = cpuNow();
    const attr = attributionPatch(model, data, { components: [...ATTRIBUTION_COMPONENTS], methods: [ATP, relpMethod('relp')], progress: attrProgress });
    const sharedCpu = marks[0] - c0;
    const atpCpu = sharedCpu + (marks[1] - marks[0]);
    const relpCpu = sharedCpu + (marks[2] - marks[1]);
    const atpS = attr.seconds.atp;
    const relpS = attr.seconds.relp;
    log(`AtP ${atpS.toFixed(2)} s (cpu ${atpCpu.toFixed(2)} s), RelP ${relpS.toFixed(2)} s (cpu ${relpCpu.toFixed(2)} s)`);

    // Matmul GFLOP/s.
    let matmul: MatmulRow[] = [];
    if (o.matmul) {
      log(`matmul GFLOP/s on ${backend}`);
      matmul = matmulBench(o.matmul, o.quick ? 3 : 7);
    }
    const first = (name: string) => {
      const r = matmul.find((x) => x.name === name);
      return r ? r.gflops : null;
    };

    // Profile.
    let profile: BenchResult['profile'];
    if (o.profile) {
      log('per-kernel profile (CPU time) of one forward and one forward+backward');
      const top = (s: KernelStat[]) => s.slice(0, 25).map((k) => ({ ...k, cpu_ms: round(k.cpu_ms), wall_ms: round(k.wall_ms) }));
      const pf = probeKernels(() => runForward(model, data.corrupt));
      const pb = probeKernels(() => runForwardBackward(model, data.corrupt, metric.fn));
      profile = { forward: top(pf.stats), backward: top(pb.stats) };
    }

    // Scaling and the memory guard.
    let scaling: ScalingRow[] = [];
    if (o.scaling) {
      scaling = runScaling({ cfg, sd, model, modelBytes, base: { batch: o.batch, pos: o.pos }, grid: o.scaling, log });
    }
    uninstallProbe();
    const maxBatch = maxBatchTable(cfg, [...new Set([o.pos, 16, 64, 256, 1024])].sort((a, b) => a - b));

    // PyTorch.
    const torch: BenchResult['torch'] = { available: false, runs: [] };
    if (o.torch) {
      const st = torchStatus();
      Object.assign(torch, st);
      if (!st.available) log(`PyTorch comparison skipped: ${st.reason}`);
      else if (o.cfg) {
        torch.available = false;
        torch.reason = 'custom config: the PyTorch side only runs the GPT-2 config file';
      } else {
        for (const n of o.torchThreads) {
          log(`PyTorch ${st.version}, ${n} thread(s)`);
          // The naive sweep runs at 1 thread only (the fair comparison): a multi-threaded OpenMP sweep on a
          // busy 2-core machine can take 10× longer and says little.
          const naiveLayers = n === 1 ? layers : [];
          torch.runs.push(runTorch(o, n, naiveLayers, reps, GPT2_CONFIG_PATH));
        }
      }
    }
    const t1 = torch.runs.find((r) => r.threads === 1);
    const vsTorch: BenchResult['vs_torch'] = t1
      ? {
          forward: fwd.s / t1.forward_s,
          forward_cpu: fwd.cpu_s / t1.forward_cpu_s,
          backward: bwd.s / t1.backward_s,
          backward_cpu: bwd.cpu_s / t1.backward_cpu_s,
          patch_naive: t1.patch_naive_s ? naive.s / t1.patch_naive_s : null,
          patch_naive_cpu: t1.patch_naive_cpu_s ? naive.cpu_s / t1.patch_naive_cpu_s : null,
        }
      : null;

    const fl = forwardFlops(cfg, o.batch, o.pos).total;
    const flb = forwardBackwardFlops(cfg, o.batch, o.pos);
    const mm = matmul.find((r) => r.name === 'plain') ? matmul.filter((r) => r.m === matmul[0].m && r.k === matmul[0].k && r.n === matmul[0].n) : [];
    const targets: TargetCheck[] = [
      check(
        K < L ? `exact patching speedup over naive (layers 0..${K - 1} only: a lower bound)` : 'exact patching speedup over naive',
        '>= 3',
        naive.s / fast.s,
        naive.cpu_s / fast.cpu_s,
        (x) => x >= 3,
      ),
      check('max abs diff fast vs naive', '<= 1e-4', maxDiff, maxDiff, (x) => x <= 1e-4),
      check('relp_s / forward_s', '<= 4', relpS / fwd.s, relpCpu / fwd.cpu_s, (x) => x <= 4),
      ...mm.map((r) => check(`matmul ${r.name} ${r.m}x${r.k}x${r.n} GFLOP/s`, '>= 35', r.gflops, r.gflops_cpu, (x) => x >= 35)),
      check('forward / torch 1 thread', '<= 3', vsTorch ? vsTorch.forward : null, vsTorch ? vsTorch.forward_cpu : null, (x) => x <= 3),
    ];
    const res: BenchResult = {
      version: versionOf(),
      backend,
      tfjs_version: tf.version.tfjs,
      node: process.version,
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? 'unknown',
      load_avg_start: round(loadStart, 3),
      load_avg_end: round(loadavg()[0], 3),
      quick: o.quick,
      batch: o.batch,
      pos: o.pos,
      model: { n_layers: L, n_heads: cfg.nHeads, d_model: cfg.dModel, d_mlp: cfg.dMlp, d_vocab: cfg.dVocab, params: paramCount(cfg) },
      forward_gflop: round(fl / 1e9),
      forward_s: round(fwd.s),
      forward_cpu_s: round(fwd.cpu_s),
      forward_gflops: round(fl / fwd.s / 1e9),
      forward_gflops_cpu: round(fl / fwd.cpu_s / 1e9),
      backward_s: round(bwd.s),
      backward_cpu_s: round(bwd.cpu_s),
      backward_gflop: round(flb / 1e9),
      backward_gflops: round(flb / bwd.s / 1e9),
      backward_gflops_cpu: round(flb / bwd.cpu_s / 1e9),
      backward_lastpos_s: round(bwdLast.s),
      backward_lastpos_cpu_s: round(bwdLast.cpu_s),
      patch_layers: layers,
      patch_positions: o.pos,
      patches: K * o.pos,
      patch_naive_s: round(naive.s),
      patch_naive_cpu_s: round(naive.cpu_s),
      patch_fast_s: round(fast.s),
      patch_fast_cpu_s: round(fast.cpu_s),
      patch_speedup: round(naive.s / fast.s),
      patch_speedup_cpu: round(naive.cpu_s / fast.cpu_s),
      max_abs_diff_fast_vs_naive: maxDiff,
      attribution_components: [...ATTRIBUTION_COMPONENTS],
      atp_s: round(atpS),
      atp_cpu_s: round(atpCpu),
      relp_s: round(relpS),
      relp_cpu_s: round(relpCpu),
      relp_over_forward: round(relpS / fwd.s),
      relp_over_forward_cpu: round(relpCpu / fwd.cpu_s),
      matmul: matmul.map((r) => ({ ...r, s: round(r.s), cpu_s: round(r.cpu_s), gflops: round(r.gflops), gflops_cpu: round(r.gflops_cpu) })),
      matmul_plain_gflops: first('plain') === null ? null : round(first('plain')!),
      matmul_transpose_a_gflops: first('transposeA') === null ? null : round(first('transposeA')!),
      matmul_transpose_b_gflops: first('transposeB') === null ? null : round(first('transposeB')!),
      scaling: scaling.map((r) => ({ ...r, forward_s: roundN(r.forward_s), forward_cpu_s: roundN(r.forward_cpu_s), backward_s: roundN(r.backward_s), backward_cpu_s: roundN(r.backward_cpu_s), peak_mb: roundN(r.peak_mb), estimate_mb: round(r.estimate_mb) })),
      max_batch_under_wasm_guard: maxBatch,
      wasm_guard_limit_mb: GUARD_LIMIT_MB,
      torch,
      vs_torch: vsTorch && {
        forward: round(vsTorch.forward),
        forward_cpu: round(vsTorch.forward_cpu),
        backward: round(vsTorch.backward),
        backward_cpu: round(vsTorch.backward_cpu),
        patch_naive: vsTorch.patch_naive === null ? null : round(vsTorch.patch_naive),
        patch_naive_cpu: vsTorch.patch_naive_cpu === null ? null : round(vsTorch.patch_naive_cpu),
      },
      targets: targets.map((t) => ({ ...t, wall: t.wall === null ? null : round(t.wall), cpu: t.cpu === null ? null : round(t.cpu) })),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      total_s: 0,
    };
    if (profile) res.profile = profile;
    res.total_s = round((performance.now() - t0) / 1000);
    return res;
  } finally {
    uninstallProbe();
    metric.dispose();
    model.dispose();
  }
}

// ---------------------------------------------------------------- report
const f3 = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(3));
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(2));

/** A human-readable summary of a result. */
export function formatReport(r: BenchResult): string {
  const out: string[] = [];
  out.push(`relp ${r.version} bench — backend ${r.backend} (tfjs ${r.tfjs_version}), ${r.cpus} cpu(s) ${r.cpu_model}, node ${r.node}`);
  out.push(`load average ${r.load_avg_start} → ${r.load_avg_end}${r.load_avg_start > r.cpus ? '  (machine busy: wall times inflated; see CPU columns)' : ''}`);
  out.push(`model: ${r.model.n_layers} layers, d_model ${r.model.d_model}, vocab ${r.model.d_vocab}, ${(r.model.params / 1e6).toFixed(1)}M params; batch ${r.batch} × ${r.pos} tokens${r.quick ? '  [quick]' : ''}`);
  out.push('');
  const t1 = r.torch.runs.find((x) => x.threads === 1);
  out.push(
    table(
      ['measure', 'wall s', 'cpu s', 'GFLOP/s (wall)', 'GFLOP/s (cpu)', 'torch 1t wall s', 'torch 1t cpu s', 'ratio wall', 'ratio cpu'],
      [
        ['forward', f3(r.forward_s), f3(r.forward_cpu_s), f2(r.forward_gflops), f2(r.forward_gflops_cpu), f3(t1?.forward_s), f3(t1?.forward_cpu_s), f2(r.vs_torch?.forward), f2(r.vs_torch?.forward_cpu)],
        ['forward+backward', f3(r.backward_s), f3(r.backward_cpu_s), f2(r.backward_gflops), f2(r.backward_gflops_cpu), f3(t1?.backward_s), f3(t1?.backward_cpu_s), f2(r.vs_torch?.backward), f2(r.vs_torch?.backward_cpu)],
        ['  (last position only)', f3(r.backward_lastpos_s), f3(r.backward_lastpos_cpu_s), '', '', '', '', '', ''],
        [`naive patching (${r.patches})`, f2(r.patch_naive_s), f2(r.patch_naive_cpu_s), '', '', f2(t1?.patch_naive_s), f2(t1?.patch_naive_cpu_s), f2(r.vs_torch?.patch_naive), f2(r.vs_torch?.patch_naive_cpu)],
        [`fast exact patching (${r.patches})`, f2(r.patch_fast_s), f2(r.patch_fast_cpu_s), '', '', '', '', '', ''],
        ['AtP sweep (4 components)', f2(r.atp_s), f2(r.atp_cpu_s), '', '', '', '', '', ''],
        ['RelP sweep (4 components)', f2(r.relp_s), f2(r.relp_cpu_s), '', '', '', '', '', ''],
      ],
    ),
  );
  out.push(`patched layers ${r.patch_layers.join(',')} × ${r.patch_positions} positions; max |fast − naive| = ${r.max_abs_diff_fast_vs_naive.toExponential(2)}`);
  for (const t of r.torch.runs.filter((x) => x.threads !== 1)) {
    out.push(`torch ${t.threads} threads: forward ${f3(t.forward_s)} s (cpu ${f3(t.forward_cpu_s)}), forward+backward ${f3(t.backward_s)} s (cpu ${f3(t.backward_cpu_s)})`);
  }
  if (!r.torch.available) out.push(`PyTorch: skipped (${r.torch.reason ?? 'disabled'})`);
  if (r.matmul.length) {
    out.push('');
    out.push(`matmul on ${r.backend}:`);
    out.push(table(['case', 'm×k×n', 'wall ms', 'cpu ms', 'GFLOP/s (wall)', 'GFLOP/s (cpu)'], r.matmul.map((m) => [m.name, `${m.m}×${m.k}×${m.n}`, (m.s * 1000).toFixed(1), (m.cpu_s * 1000).toFixed(1), f2(m.gflops), f2(m.gflops_cpu)])));
  }
  if (r.scaling.length) {
    out.push('');
    out.push('scaling (fwd+bwd = grads at every resid_pre; peak = live backend buffers during fwd+bwd, weights included):');
    out.push(formatScaling(r.scaling));
  }
  out.push('');
  out.push(`largest batch under the wasm heap guard (${r.wasm_guard_limit_mb.toFixed(0)} MB, memory-guard estimate):`);
  out.push(formatMaxBatch(r.max_batch_under_wasm_guard));
  if (r.profile) {
    for (const [name, stats] of Object.entries(r.profile)) {
      out.push('');
      out.push(`profile: ${name} (top kernels by CPU time)`);
      out.push(table(['cpu ms', 'wall ms', 'calls', 'kernel', 'inputs'], stats.slice(0, 15).map((k) => [k.cpu_ms.toFixed(1), k.wall_ms.toFixed(1), String(k.calls), k.kernel, k.shapes])));
    }
  }
  out.push('');
  out.push('targets (issue 9):');
  const pass = (x: boolean | null) => (x === null ? '–' : x ? 'pass' : 'MISS');
  out.push(table(['target', 'goal', 'wall', 'cpu', 'wall', 'cpu'], r.targets.map((t) => [t.name, t.target, t.wall === null ? '–' : String(t.wall), t.cpu === null ? '–' : String(t.cpu), pass(t.pass_wall), pass(t.pass_cpu)])));
  out.push(`peak RSS ${r.peak_rss_mb} MB; total ${r.total_s.toFixed(0)} s`);
  return out.join('\n');
}

// ---------------------------------------------------------------- CLI
function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

/** Parse argv and run; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('npm run bench --')
    .description('Benchmark relp on a GPT-2-small-shaped model (random weights)')
    .option('--quick', 'short run: 1 patched layer, 2 reps, small scaling grid', false)
    .option('--json', 'print the result as one JSON object on the last stdout line', false)
    .option('--backend <name>', 'tfjs backend: tensorflow | wasm | cpu (default: automatic / RELP_BACKEND)')
    .option('--batch <n>', 'prompts per batch', positiveInt('batch'), 8)
    .option('--pos <n>', 'tokens per prompt', positiveInt('pos'), 16)
    .option('--layers <n>', 'patching sweeps cover layers [0, n) (default: all; quick: 1)', positiveInt('layers'))
    .option('--reps <n>', 'timed repetitions of forward/backward', positiveInt('reps'))
    .option('--threads <list>', 'torch thread counts to report', '1,2')
    .option('--no-torch', 'skip the PyTorch comparison')
    .option('--no-scaling', 'skip the scaling table')
    .option('--no-matmul', 'skip the matmul benchmark')
    .option('--no-sweeps', 'skip the sweeps benchmark (2 worker threads vs 1, shard sizes, queue overhead)')
    .option('--no-edges', 'skip the edge-scoring benchmark (EAP, EAP-RelP, EAP-IG over the whole graph)')
    .option('--profile', 'per-kernel CPU profile of a forward and a forward+backward', false)
    .option('--seed <n>', 'seed of the random weights', (v) => Number(v), 0)
    .option('--out <path>', 'where to write the JSON result', join(ROOT, 'bench/results.json'))
    .option('--model-shape <name>', 'instead: relp patch (atp, relp) on a random checkpoint of this shape: gpt2-small, gpt2-large, gemma2-2b, llama3-8b (bench/large-models.ts)')
    .option('--dtype <dtype>', 'with --model-shape: storage dtype F32, F16 or BF16 (default: as the hub ships it)')
    .option('--pairs <n>', 'with --model-shape: prompt pairs', positiveInt('pairs'), 4)
    .option('--reference', 'with --model-shape: compare the scores with the PyTorch reference (test/reference/hf_reference.py)', false)
    .option('--no-passes', 'with --model-shape: skip the in-process forward / backward timings')
    .option('--no-patch', 'with --model-shape: skip relp patch (and the reference); only the in-process timings')
    .option('--shapes-dir <dir>', 'with --model-shape: where checkpoints are written and kept', join(tmpdir(), 'relp-shapes'))
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return typeof code === 'number' ? code : 2;
  }
  const a = program.opts<{
    quick: boolean; json: boolean; backend?: string; batch: number; pos: number; layers?: number; reps?: number;
    threads: string; torch: boolean; scaling: boolean; matmul: boolean; profile: boolean; seed: number; out: string; sweeps: boolean; edges: boolean;
  }>();
  const threads = a.threads.split(',').map((s) => Number(s.trim()));
  if (threads.some((n) => !Number.isInteger(n) || n < 1)) {
    process.stderr.write(`--threads must be a comma list of positive integers, got "${a.threads}"\n`);
    return 2;
  }
  const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  const shape = program.opts<{ modelShape?: string; dtype?: string; pairs: number; reference: boolean; passes: boolean; patch: boolean; shapesDir: string }>();
  if (shape.modelShape) {
    const dtype = shape.dtype?.toUpperCase();
    if (dtype !== undefined && !['F32', 'F16', 'BF16'].includes(dtype)) {
      process.stderr.write(`--dtype must be F32, F16 or BF16, got "${shape.dtype}"\n`);
      return 2;
    }
    const { runLargeModelBench } = await import('./large-models.ts');
    const r = await runLargeModelBench({ shape: shape.modelShape, dtype: dtype as 'F32' | undefined, dir: shape.shapesDir, pairs: shape.pairs, reference: shape.reference, passes: shape.passes, patch: shape.patch, log });
    const out = a.out.replace(/\.json$/, `-${shape.modelShape}${dtype ? '-' + dtype.toLowerCase() : ''}.json`);
    writeFileSync(out, JSON.stringify(r, null, 2) + '\n');
    process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  const cfg = configFromHF(JSON.parse(readFileSync(GPT2_CONFIG_PATH, 'utf8')));
  const result = await runBench({
    quick: a.quick,
    backend: a.backend,
    batch: a.batch,
    pos: a.pos,
    patchLayers: a.layers,
    reps: a.reps,
    torch: a.torch,
    torchThreads: threads,
    scaling: a.scaling ? defaultGrid(cfg, a.quick) : false,
    matmul: a.matmul ? [[768, 768, 3072], [128, 768, 3072]] : false,
    profile: a.profile,
    seed: a.seed,
    log,
  });
  let report = formatReport(result);
  if (a.sweeps) {
    const sweeps = await runSweepBench({ cfg, quick: a.quick, batch: a.batch, pos: a.pos, seed: a.seed, log });
    (result as BenchResult & { sweeps?: SweepBenchResult }).sweeps = sweeps;
    report += '\n\n' + formatSweepReport(sweeps);
  }
  if (a.edges) {
    const { model } = buildModel(cfg, randomStateDict(cfg, { seed: a.seed }));
    try {
      const rows = runEdgeBench(model, a.quick ? 2 : a.batch, a.pos, log);
      (result as BenchResult & { edges?: EdgeBenchRow[] }).edges = rows;
      report += '\n\n' + formatEdgeReport(rows, a.quick ? 2 : a.batch, a.pos);
    } finally {
      model.dispose();
    }
  }
  if (a.out) writeFileSync(a.out, JSON.stringify(result, null, 2) + '\n');
  if (a.json) {
    process.stderr.write(report + '\n');
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    process.stdout.write(report + '\n');
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
