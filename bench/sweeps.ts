/**
 * Sweeps across cores and machines (issue 15), part of `npm run bench` (or alone:
 * `npx tsx bench/sweeps.ts [--quick] [--json]`):
 * - speed-up of 2 worker threads over 1 for the exact activation-patching sweep on a
 *   GPT-2-small-shaped model (real config, random weights; target ≥ 1.7× on 2 cores), end to end
 *   and without the threads' start-up (tsx, backend and a 500 MB model load per thread);
 * - how it scales with shard size (layers per shard: fewer, larger shards balance worse);
 * - the queue's overhead per shard: the round trip of a no-op shard through BullMQ and one
 *   `relp worker` thread (needs Redis: RELP_REDIS_URL, else a redis-server started here, else skipped).
 * Times are wall seconds with process CPU seconds (all threads): on a shared machine compare both.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend.ts';
import { configToHF, type BaseConfig } from '../src/models/config.ts';
import { randomStateDict } from '../src/models/state-dict.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { loadModel, type LoadedModel } from '../src/hooks/load-model.ts';
import type { PromptPair } from '../src/tasks/types.ts';
import { buildPlan, runPlan } from '../src/sweeps/sharded-sweep.ts';
import { startQueueWorker } from '../src/sweeps/queue-worker.ts';
import { benchTokens } from './scaling.ts';

/** One timed run. */
export interface SweepTiming {
  workers: number;
  layers_per_shard: number;
  shards: number;
  wall_s: number;
  cpu_s: number;
}

/** The sweep benchmark's result. */
export interface SweepBenchResult {
  model: string;
  batch: number;
  pos: number;
  components: string[];
  /** Start-up of 2 threads (no-op shards that load the model in each). */
  thread_startup_s: number;
  runs: SweepTiming[];
  /** t(1 worker) / t(2 workers) at 1 layer per shard, end to end. */
  speedup_2_over_1: number;
  /** The same with the 2 threads' start-up subtracted. */
  speedup_2_over_1_excl_startup: number;
  /** Speed-up of 2 workers over 1 (1 layer per shard, 1 worker) per shard size. */
  speedup_by_shard_size: { layers_per_shard: number; shards: number; speedup: number }[];
  /** No-op shard round trip through the queue (ms per shard), or null without Redis. */
  queue_overhead_ms_per_shard: number | null;
  queue_note?: string;
  cpus: number;
  load_avg_start: number;
  load_avg_end: number;
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** IOI-like pairs of random tokens: the corrupt prompt differs at 20% and 65% of its length. */
export function syntheticPairs(batch: number, pos: number, vocab: number): PromptPair[] {
  const clean = benchTokens(batch, pos, vocab);
  return clean.map((ids, b) => {
    const corrupt = ids.slice();
    for (const p of [Math.floor(0.2 * pos), Math.floor(0.65 * pos)]) corrupt[p] = (corrupt[p] + 17) % vocab;
    return { clean: `clean ${b}`, corrupt: `corrupt ${b}`, answer: ' a', wrong: ' b', cleanIds: ids, corruptIds: corrupt, answerId: (b * 13 + 5) % vocab, wrongId: (b * 29 + 11) % vocab };
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function redisForBench(log: (m: string) => void): Promise<{ url: string; stop: () => void } | { note: string }> {
  if (process.env.RELP_REDIS_URL) return { url: process.env.RELP_REDIS_URL.replace(/\/+$/, ''), stop: () => {} };
  const port = await freePort();
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const ok = await new Promise<boolean>((resolve) => {
    proc.once('error', () => resolve(false));
    proc.stdout!.on('data', (b: Buffer) => /Ready to accept/.test(b.toString()) && resolve(true));
    setTimeout(() => resolve(false), 10_000);
  });
  if (!ok) return { note: 'no Redis (set RELP_REDIS_URL or install redis-server)' };
  log(`started redis-server on 127.0.0.1:${port}`);
  return { url: `redis://127.0.0.1:${port}`, stop: () => proc.kill('SIGTERM') };
}

/** Run the sweep benchmark. */
export async function runSweepBench(o: { cfg: BaseConfig; quick: boolean; batch: number; pos: number; seed: number; log: (m: string) => void }): Promise<SweepBenchResult> {
  const { log } = o;
  const load0 = loadavg()[0];
  await initBackend();
  const dir = mkdtempSync(join(tmpdir(), 'relp-bench-sweeps-'));
  let loaded: LoadedModel | undefined;
  try {
    log('sweeps: writing the GPT-2-small-shaped model for the worker threads');
    writeFileSync(join(dir, 'config.json'), JSON.stringify(configToHF(o.cfg)));
    writeSafetensors(join(dir, 'model.safetensors'), randomStateDict(o.cfg, { seed: o.seed }));
    loaded = await loadModel(dir);
    // Quick: fewer prompts and positions, the same 12 layers (so shard sizes stay meaningful).
    const batch = o.quick ? Math.min(2, o.batch) : o.batch;
    const pos = o.quick ? Math.min(8, o.pos) : o.pos;
    const pairs = syntheticPairs(batch, pos, o.cfg.dVocab);
    const components = ['resid_pre'];
    const plan = (layersPerShard: number) => buildPlan(loaded!, dir, pairs, { methods: ['activation'], components: components.join(','), metric: 'logit-diff', layersPerShard });
    const time = async (workers: number, layersPerShard: number): Promise<SweepTiming> => {
      const p = plan(layersPerShard);
      const w0 = performance.now();
      const c0 = cpuNow();
      const r = await runPlan(p, loaded, { workers, log: () => {} });
      const t: SweepTiming = { workers, layers_per_shard: layersPerShard, shards: r.stats.shards, wall_s: (performance.now() - w0) / 1000, cpu_s: cpuNow() - c0 };
      log(`sweeps: ${workers} worker(s), ${layersPerShard} layer(s)/shard: ${t.wall_s.toFixed(1)} s wall, ${t.cpu_s.toFixed(1)} s cpu`);
      return t;
    };
    // Thread start-up: 2 threads each loading the model, running no-op shards.
    const s0 = performance.now();
    await runPlan(buildPlan(loaded, dir, pairs, { noop: 2 }), loaded, { workers: 2, log: () => {} });
    const startup = (performance.now() - s0) / 1000;
    log(`sweeps: 2 threads start in ${startup.toFixed(1)} s`);
    const runs: SweepTiming[] = [await time(1, 1), await time(2, 1)];
    const sizes = o.quick ? [4] : [2, 4, 6, 12];
    for (const s of sizes) runs.push(await time(2, s));
    const one = runs[0].wall_s;
    const two = runs[1].wall_s;

    // Queue overhead: no-op shards through BullMQ and one relp worker thread (model warm).
    let overhead: number | null = null;
    let note: string | undefined;
    const redis = await redisForBench(log);
    if ('note' in redis) note = redis.note;
    else {
      const url = `${redis.url}/bench-${Date.now()}`;
      const w = await startQueueWorker({ url, workers: 1, log: () => {} });
      try {
        const small = await loadModel(); // the embedded model: no-op shards only load it once
        await runPlan(buildPlan(small, 'embedded', syntheticPairs(1, 4, small.model.cfg.dVocab), { noop: 3 }), small, { queue: url, log: () => {} });
        const n = o.quick ? 50 : 200;
        const q0 = performance.now();
        await runPlan(buildPlan(small, 'embedded', syntheticPairs(1, 5, small.model.cfg.dVocab), { noop: n }), small, { queue: url, log: () => {} });
        overhead = (performance.now() - q0) / n;
        log(`sweeps: queue round trip ${overhead.toFixed(1)} ms per no-op shard (${n} shards, 1 worker thread)`);
        small.model.dispose();
      } finally {
        await w.close();
        redis.stop();
      }
    }
    return {
      model: 'gpt2-small shape (random weights)',
      batch,
      pos,
      components,
      thread_startup_s: startup,
      runs,
      speedup_2_over_1: one / two,
      speedup_2_over_1_excl_startup: one / Math.max(1e-9, two - startup),
      speedup_by_shard_size: runs.filter((r) => r.workers === 2).map((r) => ({ layers_per_shard: r.layers_per_shard, shards: r.shards, speedup: one / r.wall_s })),
      queue_overhead_ms_per_shard: overhead,
      queue_note: note,
      cpus: cpus().length,
      load_avg_start: load0,
      load_avg_end: loadavg()[0],
    };
  } finally {
    loaded?.model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The report lines. */
export function formatSweepReport(r: SweepBenchResult): string {
  const out = [`sweeps (issue 15): exact activation patching of ${r.components.join(',')}, ${r.model}, ${r.batch} prompts × ${r.pos} tokens`];
  for (const t of r.runs) out.push(`  ${t.workers} worker(s), ${t.layers_per_shard} layer(s)/shard (${t.shards} shards): ${t.wall_s.toFixed(1)} s wall, ${t.cpu_s.toFixed(1)} s cpu`);
  out.push(`  speed-up 2 over 1: ${r.speedup_2_over_1.toFixed(2)}× end to end, ${r.speedup_2_over_1_excl_startup.toFixed(2)}× without the ${r.thread_startup_s.toFixed(1)} s thread start-up (target ≥ 1.7×)`);
  out.push(`  by shard size: ${r.speedup_by_shard_size.map((s) => `${s.layers_per_shard} layers → ${s.speedup.toFixed(2)}×`).join(', ')}`);
  out.push(`  queue overhead: ${r.queue_overhead_ms_per_shard === null ? `– (${r.queue_note})` : `${r.queue_overhead_ms_per_shard.toFixed(1)} ms per no-op shard`}`);
  out.push(`  load average ${r.load_avg_start.toFixed(1)} → ${r.load_avg_end.toFixed(1)} on ${r.cpus} cores`);
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { readFileSync } = await import('node:fs');
  const { configFromHF } = await import('../src/models/config.ts');
  // Not imported from bench.ts: it imports this file (a cycle would deadlock this top-level await).
  const GPT2_CONFIG_PATH = fileURLToPath(new URL('../test/fixtures/gpt2-tokenizer/config.json', import.meta.url));
  const quick = process.argv.includes('--quick');
  const cfg = configFromHF(JSON.parse(readFileSync(GPT2_CONFIG_PATH, 'utf8')));
  const log = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  const r = await runSweepBench({ cfg, quick, batch: 8, pos: 16, seed: 0, log });
  process.stderr.write(formatSweepReport(r) + '\n');
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}
