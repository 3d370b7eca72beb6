/**
 * `npm run bench -- --model-shape NAME [--dtype F32|BF16] [--pairs N] [--reference]`: relp on a
 * random checkpoint of a real model's shape (gpt2-small, gpt2-large, gemma2-2b, llama3-8b; see
 * src/models/random-checkpoint.ts), written once to disk and kept (`--dir`).
 *
 * Runs `relp patch --methods atp,relp --components resid_pre,attn_out,mlp_out` as a child process
 * under `/usr/bin/time -v` (wall time, peak RSS), reads its run.json, and with `--reference` runs
 * the independent PyTorch reference (test/reference/hf_reference.py) on the same pairs and weights
 * and reports the largest relative difference per method and component. Then, in this process,
 * times a streamed forward and a forward + block-wise backward with the read / upload / compute
 * split; on gpt2-small also the whole-model passes, for the streamed ÷ whole ratio.
 *
 * Opt-in and slow (minutes to an hour on 2 cores): never part of `npm test`.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHECKPOINT_SHAPES, writeRandomCheckpoint } from '../src/models/random-checkpoint.ts';
import type { SafetensorsDtype } from '../src/io/safetensors.ts';
import { wasmHeapBytes } from '../src/backend/wasm-peak.ts';
import { RULE_PRESETS } from '../src/rules/rules.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKENIZER_DIR = join(ROOT, 'test/fixtures/gpt2-tokenizer');
const PYTHON = process.env.RELP_TORCH_PYTHON || '/usr/bin/python3';
const COMPONENTS = ['resid_pre', 'attn_out', 'mlp_out'] as const;
const METHODS = ['atp', 'relp'] as const;

/** Options of {@link runLargeModelBench}. */
export interface LargeBenchOptions {
  shape: string;
  dtype?: SafetensorsDtype;
  /** Where checkpoints are written and kept. */
  dir: string;
  pairs: number;
  reference: boolean;
  /** Also time passes in this process (forward, forward + backward). */
  passes: boolean;
  /** Run relp patch (and the reference); false: only the in-process passes. */
  patch: boolean;
  log: (s: string) => void;
}

/** The checkpoint folder of a shape and dtype, written once (a `.complete` marker says it is whole). */
export function ensureCheckpoint(o: Pick<LargeBenchOptions, 'shape' | 'dtype' | 'dir' | 'log'>): string {
  const shape = CHECKPOINT_SHAPES[o.shape];
  if (!shape) throw new Error(`unknown --model-shape "${o.shape}" (use one of: ${Object.keys(CHECKPOINT_SHAPES).join(', ')})`);
  const dtype = o.dtype ?? shape.dtype;
  const dir = join(o.dir, `${o.shape}-${dtype.toLowerCase()}`);
  if (!existsSync(join(dir, '.complete'))) {
    o.log(`writing a random ${o.shape} checkpoint (${dtype}, ${shape.shards} file(s)) to ${dir}`);
    const t0 = performance.now();
    let last = 0;
    const r = writeRandomCheckpoint(dir, {
      config: shape.config,
      dtype,
      shards: shape.shards,
      seed: 1,
      onProgress: (w, total) => {
        if (w - last > total / 10 || w === total) o.log(`  ${((100 * w) / total).toFixed(0)}% of ${(total / 1e9).toFixed(2)} GB`);
        if (w - last > total / 10) last = w;
      },
    });
    writeFileSync(join(dir, '.complete'), JSON.stringify({ parameters: r.parameters, bytes: r.tensorBytes, seconds: (performance.now() - t0) / 1000 }));
  }
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TOKENIZER_DIR, f), join(dir, f));
  return dir;
}

const NAMES = ['Mary', 'John', 'Sarah', 'David', 'Anna', 'James', 'Paul', 'Laura', 'Peter', 'Emma', 'Henry', 'Alice'];
const PLACES = ['store', 'school', 'park', 'beach', 'garden', 'house'];

/** n IOI-style pairs (ABC corruption), written as JSONL; all prompts tokenize to the same length under GPT-2's BPE. */
function writeDataset(path: string, n: number): void {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const [a, b, c] = [NAMES[(2 * i) % NAMES.length], NAMES[(2 * i + 1) % NAMES.length], NAMES[(2 * i + 6) % NAMES.length]];
    const place = PLACES[i % PLACES.length];
    lines.push(JSON.stringify({ clean: `When ${a} and ${b} went to the ${place}, ${b} gave a drink to`, corrupt: `When ${a} and ${b} went to the ${place}, ${c} gave a drink to`, answer: ` ${a}`, wrong: ` ${b}` }));
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

/** What the benchmark reads from run.json. */
interface RunScores {
  scores: Record<string, Record<string, { values: number[][] }>>;
  metric: { corrupt: number };
  dataset: { pairs: unknown[] };
}

/** `relp patch` under /usr/bin/time -v: wall seconds, peak RSS (GB), the run file and stderr. */
function runPatch(model: string, data: string, out: string, log: (s: string) => void) {
  const args = ['-v', process.execPath, join(ROOT, 'bin/relp.js'), 'patch', '--model', model, '--dataset', data, '--methods', METHODS.join(','), '--components', COMPONENTS.join(','), '--metric', 'logit-diff', '--workers', '1', '--force', '--out', out, '--json'];
  log(`running: relp ${args.slice(3).join(' ')}`);
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wall = (performance.now() - t0) / 1000;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (r.status !== 0) throw new Error(`relp patch failed (exit ${r.status}):\n${r.stderr.slice(-3000)}`);
  const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunScores;
  return { wall, peakRssGB: rss ? Number(rss[1]) / 1e6 : NaN, run, stderr: r.stderr };
}

/**
 * `relp patch --methods activation,atp,atp*,relp` streamed and whole on the same checkpoint: the
 * largest relative difference per method, and the wall-time ratio (one run each, same machine).
 */
function compareStreamedWhole(model: string, data: string, work: string, log: (s: string) => void) {
  const methods = ['activation', 'atp', 'atp*', 'relp'];
  const run = (flag: string, env: Record<string, string> = {}) => {
    const out = join(work, `cmp${flag}${Object.keys(env).join('')}`);
    rmSync(out, { recursive: true, force: true });
    const args = [join(ROOT, 'bin/relp.js'), 'patch', '--model', model, '--dataset', data, '--methods', methods.join(','), '--components', COMPONENTS.join(','), '--workers', '1', flag, '--out', out, '--json'];
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, ...env } });
    if (r.status !== 0) throw new Error(`relp patch ${flag} failed: ${r.stderr.slice(-2000)}`);
    return { wall: (performance.now() - t0) / 1000, run: JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunScores };
  };
  const whole = run('--no-stream-weights');
  const streamed = run('--stream-weights');
  // Every block uploaded each time it runs: the cost of streaming itself.
  const uncached = run('--stream-weights', { RELP_BLOCK_CACHE_GB: '0' });
  const maxRel: Record<string, number> = {};
  for (const m of methods) {
    let err = 0;
    let scale = 0;
    for (const c of COMPONENTS) {
      const a = whole.run.scores[m][c].values.flat();
      for (const other of [streamed, uncached]) {
        const b = other.run.scores[m][c].values.flat();
        a.forEach((v, i) => ((err = Math.max(err, Math.abs(v - b[i]))), (scale = Math.max(scale, Math.abs(v)))));
      }
    }
    maxRel[m] = err / scale;
  }
  log(
    `streamed vs whole relp patch: ${methods.map((m) => `${m} ${maxRel[m].toExponential(1)}`).join(', ')}; wall ${streamed.wall.toFixed(1)} s vs ${whole.wall.toFixed(1)} s (${(streamed.wall / whole.wall).toFixed(2)}×); ` +
      `without kept blocks ${uncached.wall.toFixed(1)} s (${(uncached.wall / whole.wall).toFixed(2)}×)`,
  );
  return { max_rel_diff: maxRel, streamed_wall_s: streamed.wall, whole_wall_s: whole.wall, ratio: streamed.wall / whole.wall, uncached_wall_s: uncached.wall, uncached_ratio: uncached.wall / whole.wall };
}

/** Scores as grids per method and component. */
type ScoreGrids = Record<string, Record<string, number[][]>>;

/** The PyTorch reference's AtP / RelP change per pair-mean cell, in float64 or float32. */
function referenceScores(model: string, pairsFile: string, float32: boolean, dir: string): ScoreGrids {
  const args = [join(ROOT, 'test/reference/hf_reference.py'), 'patch', '--model', model, '--pairs', pairsFile, '--methods', METHODS.join(','), '--rules', 'relp', '--components', COMPONENTS.join(','), '--raw-metric', ...(float32 ? ['--float32'] : [])];
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`reference failed: ${r.stderr.slice(-2000)}`);
  writeFileSync(join(dir, float32 ? 'reference-float32.json' : 'reference.json'), r.stdout);
  return (JSON.parse(r.stdout) as { scores: ScoreGrids }).scores;
}

/** Largest |got − want| / max |want| of one grid. */
function maxRelErr(got: number[], want: number[]): { relErr: number; scale: number } {
  const scale = Math.max(1e-12, ...want.map(Math.abs));
  return { relErr: Math.max(...got.map((v, i) => Math.abs(v - want[i]))) / scale, scale };
}

/**
 * Largest |relp − torch| / max |torch| per method and component, against float64 (float32 where
 * float64 does not fit in memory). Against float64 also PyTorch's own float32 run, and relp
 * against it: how far float32 itself is from float64 on this checkpoint.
 */
function compareWithReference(model: string, pairs: unknown[], run: RunScores, big: boolean, dir: string) {
  const pairsFile = join(dir, 'pairs.json');
  writeFileSync(pairsFile, JSON.stringify({ pairs }));
  const t0 = performance.now();
  const ref = referenceScores(model, pairsFile, big, dir);
  const ref32 = big ? undefined : referenceScores(model, pairsFile, true, dir);
  // relp reports AtP / RelP as the base run's metric plus the first-order change; the reference
  // (with --raw-metric) reports the change alone.
  const base = run.metric.corrupt;
  const rows: { method: string; component: string; relErr: number; scale: number; torch32RelErr?: number; relpVsTorch32?: number }[] = [];
  for (const m of METHODS) {
    for (const c of COMPONENTS) {
      const got = run.scores[m][c].values.flat().map((v) => v - base);
      const want = ref[m][c].flat();
      const row: (typeof rows)[number] = { method: m, component: c, ...maxRelErr(got, want) };
      if (ref32) {
        row.torch32RelErr = maxRelErr(ref32[m][c].flat(), want).relErr;
        row.relpVsTorch32 = maxRelErr(got, ref32[m][c].flat()).relErr;
      }
      rows.push(row);
    }
  }
  return { rows, reference_dtype: big ? 'float32' : 'float64', seconds: (performance.now() - t0) / 1000 };
}

/** Run the benchmark of one shape; returns the JSON-able result. */
export async function runLargeModelBench(o: LargeBenchOptions): Promise<Record<string, unknown>> {
  mkdirSync(o.dir, { recursive: true });
  const load0 = loadavg()[0];
  const model = ensureCheckpoint(o);
  const work = join(o.dir, `${o.shape}-${(o.dtype ?? CHECKPOINT_SHAPES[o.shape].dtype).toLowerCase()}-work`);
  mkdirSync(work, { recursive: true });
  const data = join(work, 'data.jsonl');
  writeDataset(data, o.pairs);
  const result: Record<string, unknown> = { shape: o.shape, dtype: o.dtype ?? CHECKPOINT_SHAPES[o.shape].dtype, pairs: o.pairs, load_avg_start: load0 };
  if (o.patch) Object.assign(result, runPatchAndReference(o, model, data, work));
  if (o.shape === 'gpt2-small') result.streamed_vs_whole = compareStreamedWhole(model, data, work, o.log);
  if (o.passes) result.passes = await timePasses(model, o.shape === 'gpt2-small', o.log);
  result.load_avg_end = loadavg()[0];
  return result;
}

/** relp patch under /usr/bin/time, then (with --reference) the PyTorch comparison. */
function runPatchAndReference(o: LargeBenchOptions, model: string, data: string, work: string): Record<string, unknown> {
  rmSync(join(work, 'run'), { recursive: true, force: true }); // a fresh run, not a resumed one
  const patch = runPatch(model, data, join(work, 'run'), o.log);
  const execution = /relp: execution: (.*)/.exec(patch.stderr)?.[1] ?? '';
  const stream = /relp: streamed: (.*)/.exec(patch.stderr)?.[1] ?? '';
  o.log(`relp patch: ${patch.wall.toFixed(1)} s wall, peak RSS ${patch.peakRssGB.toFixed(2)} GB; ${execution}; ${stream}`);
  const result: Record<string, unknown> = { patch: { wall_s: patch.wall, peak_rss_gb: patch.peakRssGB, execution, stream } };
  if (o.reference) {
    const big = o.shape !== 'gpt2-small' && o.shape !== 'gpt2-large';
    const cmp = compareWithReference(model, patch.run.dataset.pairs, patch.run, big, work);
    for (const r of cmp.rows) {
      const f32 = r.torch32RelErr === undefined ? '' : `; torch float32 vs float64 ${r.torch32RelErr.toExponential(2)}, relp vs torch float32 ${r.relpVsTorch32!.toExponential(2)}`;
      o.log(`  ${r.method}/${r.component}: max rel err vs torch ${cmp.reference_dtype} ${r.relErr.toExponential(2)} (scale ${r.scale.toExponential(2)})${f32}`);
    }
    result.reference = cmp;
  }
  return result;
}

/** Forward and forward + backward on 4 × 16 tokens, streamed (and whole when `whole`), in this process. */
async function timePasses(dir: string, whole: boolean, log: (s: string) => void): Promise<Record<string, number>> {
  const { loadModel } = await import('../src/hooks/load-model.ts');
  const out: Record<string, number> = {};
  // On gpt2-small: whole, streamed keeping its blocks (all fit), and streamed uploading every block each time.
  const modes = whole ? (['whole', 'streamed', 'streamed_uncached'] as const) : (['streamed'] as const);
  for (const key of modes) {
    if (key === 'streamed_uncached') process.env.RELP_BLOCK_CACHE_GB = '0';
    const m = await loadModel(dir, { stream: key !== 'whole' });
    delete process.env.RELP_BLOCK_CACHE_GB;
    const tokens = Array.from({ length: 4 }, (_, b) => Array.from({ length: 16 }, (_, i) => (b * 131 + i * 17) % 50000));
    const names = [0, m.model.cfg.nLayers - 1].map((l) => `blocks.${l}.hook_resid_pre`);
    // As a logit-difference sweep runs them: the last position, two vocabulary ids, RelP's rules;
    // "all_vocab": the same passes unembedding the whole vocabulary (before sweeps restricted it).
    const ids = [11, 42];
    // Slices, not gather: gather has no gradient on wasm.
    const pick = (lg: tf.Tensor3D) => (lg.shape[2] === 2 ? lg : tf.concat(ids.map((v) => tf.slice(lg, [0, 0, v], [-1, -1, 1])), 2));
    const metric = (lg: tf.Tensor3D) => tf.sum(tf.mul(pick(lg), tf.tensor1d([1, -1]))) as tf.Scalar;
    // Large streamed models: one timed pass of each, no whole-vocabulary variant (minutes per pass).
    const variants = whole ? ([['', ids], ['_all_vocab', undefined]] as const) : ([['', ids]] as const);
    for (const [suffix, logitIds] of variants) {
      const fwd = () => m.model.forward(tokens, { lastPositionOnly: true, logitIds }).dispose();
      const bwd = () => {
        const r = m.model.runWithCacheAndGrads(tokens, metric, { names, lastPositionOnly: true, logitIds, rules: RULE_PRESETS.relp });
        tf.dispose([r.logits, r.value, ...Object.values(r.cache), ...Object.values(r.grads)]);
      };
      const reps = whole ? 3 : 1;
      out[`${key}_forward${suffix}_s`] = medianSeconds(fwd, reps, whole);
      out[`${key}_forward_backward${suffix}_s`] = medianSeconds(bwd, reps, whole);
      log(`${key}${suffix}: forward ${out[`${key}_forward${suffix}_s`].toFixed(2)} s, forward+backward (RelP) ${out[`${key}_forward_backward${suffix}_s`].toFixed(2)} s`);
    }
    const s = m.model.streamStats();
    if (s) Object.assign(out, { [`${key}_read_s`]: s.readSeconds, [`${key}_upload_s`]: s.uploadSeconds, [`${key}_blocks`]: s.blocksUploaded, [`${key}_kept_block_uses`]: s.cacheHits });
    const heap = wasmHeapBytes();
    if (heap !== undefined) out[`${key}_wasm_heap_gb`] = heap / 1e9; // the heap only grows: the peak so far
    m.model.dispose();
  }
  // A RelP (or AtP) estimate costs the source run's forward plus one forward + backward at the base run.
  out.gradient_method_forward_equivalents = (out.streamed_forward_s + out.streamed_forward_backward_s) / out.streamed_forward_s;
  if (whole) {
    for (const k of ['streamed', 'streamed_uncached']) {
      out[`${k}_over_whole_forward`] = out[`${k}_forward_s`] / out.whole_forward_s;
      out[`${k}_over_whole_forward_backward`] = out[`${k}_forward_backward_s`] / out.whole_forward_backward_s;
    }
    out.uncached_gradient_method_forward_equivalents = (out.streamed_uncached_forward_s + out.streamed_uncached_forward_backward_s) / out.streamed_uncached_forward_s;
  }
  return out;
}

/** Median wall seconds of `reps` calls of `f`, after one untimed warm-up call when `warm`. */
function medianSeconds(f: () => void, reps: number, warm: boolean): number {
  if (warm) f();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    t.push((performance.now() - t0) / 1000);
  }
  return t.sort((a, b) => a - b)[Math.floor(reps / 2)];
}
