/**
 * Distributed sweeps on BullMQ/Redis with real `relp patch` and `relp worker` processes:
 * equal scores for --workers 1, --workers 2 and --queue (2 workers), and the fault cases
 * (worker SIGKILLed mid-shard, coordinator SIGKILLed and restarted, Redis restarted mid-run,
 * a worker on a different model). Needs RELP_REDIS_URL (skipped only when it is unset and
 * RELP_REQUIRE_REDIS is unset; .ci/run sets both).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { runCli } from '../cli/run-cli.ts';
import { ownRedis, queueUrl, relp, SKIP_REDIS, startWorker, stopWorker, type Child } from '../helpers/redis.ts';
import { makeTmpModelDir } from '../helpers/tmp-model.ts';
import { loadModelWithTokenizer, EMBEDDED_MODEL_DIR } from '../../src/hooks/load-model.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { loadDataset } from '../../src/tasks/dataset.ts';
import { buildPlan, runPlan } from '../../src/sweeps/sharded-sweep.ts';
import { parseQueueUrl } from '../../src/sweeps/queue-url.ts';
import type { RunFile } from '../../src/contracts/run.ts';
import type { ShardStoreFile } from '../../src/sweeps/shard-store.ts';

// The equality case runs every component and method the issue names; the fault cases run a
// smaller sweep (the property is about shards and processes, not about which scores) to keep CI short.
const SHARDS = 20; // 4 components × 4 layers + 2 methods × 2 prompt shards
const args = (out: string, ...more: string[]) => [
  'patch', '--task', 'ioi', '--n', '4', '--methods', 'activation,atp,relp', '--components', 'resid_pre,attn_out,mlp_out,z', '--shard-prompts', '2', '--out', out, ...more,
];
const FAULT_SHARDS = 8; // resid_pre × 4 layers + AtP × 4 one-prompt shards
const fargs = (out: string, ...more: string[]) => [
  'patch', '--task', 'ioi', '--n', '4', '--methods', 'activation,atp', '--components', 'resid_pre', '--shard-prompts', '1', '--out', out, ...more,
];

function readRun(out: string): RunFile {
  return JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunFile;
}

/** Every score of `b` equals `a`'s within 1e-6 (and the same set of grids). */
function expectSameScores(a: RunFile, b: RunFile): void {
  expect(Object.keys(b.scores).sort()).toEqual(Object.keys(a.scores).sort());
  for (const m of Object.keys(a.scores)) {
    for (const c of Object.keys(a.scores[m]) as (keyof RunFile['scores'][string])[]) {
      const x = (a.scores[m][c]!.values as unknown[]).flat(3) as number[];
      const y = (b.scores[m][c]!.values as unknown[]).flat(3) as number[];
      expect(y.length, `${m}/${c}`).toBe(x.length);
      x.forEach((v, i) => expect(Math.abs(v - y[i]), `${m}/${c}[${i}]`).toBeLessThan(1e-6));
    }
  }
  expect(Math.abs(a.metric.clean! - b.metric.clean!)).toBeLessThan(1e-6);
  expect(Math.abs(a.metric.corrupt! - b.metric.corrupt!)).toBeLessThan(1e-6);
}

function doneShards(out: string): ShardStoreFile['done'] {
  try {
    return (JSON.parse(readFileSync(join(out, 'progress.json'), 'utf8')) as ShardStoreFile).done;
  } catch {
    return {}; // not there yet, or being renamed into place
  }
}

function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = async () => {
      if (await cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(() => void tick(), 50);
    };
    void tick();
  });
}

describe.skipIf(SKIP_REDIS)('distributed sweeps (BullMQ on Redis)', () => {
  let dir: string;
  let ref: RunFile;
  let fref: RunFile;
  const children: Child[] = [];
  const keep = (c: Child) => (children.push(c), c);
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relp-dist-'));
    const r = await runCli(args(join(dir, 'w1'), '--workers', '1'));
    expect(r.code, r.stderr).toBe(0);
    ref = readRun(join(dir, 'w1'));
    const f = await runCli(fargs(join(dir, 'f1'), '--workers', '1'));
    expect(f.code, f.stderr).toBe(0);
    fref = readRun(join(dir, 'f1'));
  }, 300_000);
  afterAll(() => {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }, 300_000);

  it('--workers 2 and --queue with 2 relp worker processes equal --workers 1 (1e-6): activation, AtP, RelP on resid_pre/attn_out/mlp_out/z', async () => {
    const url = queueUrl('equal');
    const workers = await Promise.all([startWorker(url), startWorker(url)].map(async (p) => keep(await p)));
    const r2 = await runCli(args(join(dir, 'w2'), '--workers', '2'));
    expect(r2.code, r2.stderr).toBe(0);
    expectSameScores(ref, readRun(join(dir, 'w2')));
    const rq = await runCli(args(join(dir, 'q'), '--queue', url));
    expect(rq.code, rq.stderr).toBe(0);
    expectSameScores(ref, readRun(join(dir, 'q')));
    const ran = await Promise.all(workers.map(stopWorker));
    expect(ran[0] + ran[1]).toBe(SHARDS); // every shard once, on either worker
  }, 300_000);

  it('exact edges: the queue with 2 relp worker processes equals one thread (1e-6)', async () => {
    const url = queueUrl('edges');
    const workers = await Promise.all([startWorker(url), startWorker(url)].map(async (p) => keep(await p)));
    // A range of edges, to keep CI short (the sharded-vs-unsharded check is in sharded.test.ts).
    const loaded = await loadModelWithTokenizer();
    const pairs = loadDataset(loaded.tokenizer, { kind: 'ioi', n: 3, seed: 0, corruption: 'abc' });
    const plan = buildPlan(loaded, 'embedded', pairs, { edges: true, edgeRange: [0, 89], edgesPerShard: 30 });
    const local = await runPlan(plan, loaded, { workers: 1 });
    const queued = await runPlan(plan, loaded, { queue: url, log: () => {} });
    for (let e = 0; e <= 89; e++) expect(Math.abs(local.edges![e] - queued.edges![e])).toBeLessThan(1e-6);
    loaded.model.dispose();
    const ran = await Promise.all(workers.map(stopWorker));
    expect(ran[0] + ran[1]).toBe(3);
  }, 300_000);

  it('a worker SIGKILLed mid-shard: BullMQ hands the stalled shard on and the run finishes with equal results', async () => {
    const url = queueUrl('kill-worker');
    const lock = { RELP_QUEUE_LOCK_MS: '2000' };
    const slow = keep(await startWorker(url, [], { ...lock, RELP_TEST_SHARD_DELAY_MS: '60000' }));
    const out = join(dir, 'kill-worker');
    const coord = keep(relp(fargs(out, '--queue', url)));
    const t = parseQueueUrl(url);
    const q = new Queue(t.name, { connection: t.connection });
    await until(async () => (await q.getActiveCount()) > 0, 60_000, 'a shard to start on the slow worker');
    slow.proc.kill('SIGKILL');
    await slow.exited;
    const good = keep(await startWorker(url, [], lock));
    expect(await coord.exited, coord.out()).toBe(0);
    await q.close();
    expectSameScores(fref, readRun(out));
    expect(await stopWorker(good)).toBe(FAULT_SHARDS); // the killed worker finished none
  }, 300_000);

  it('the coordinator SIGKILLed and restarted resumes, recomputes no finished shard, and gives equal results', async () => {
    const url = queueUrl('kill-coord');
    const env = { RELP_TEST_SHARD_DELAY_MS: '300' };
    const workers = [keep(await startWorker(url, [], env)), keep(await startWorker(url, [], env))];
    const out = join(dir, 'kill-coord');
    const c1 = keep(relp(fargs(out, '--queue', url)));
    await until(() => Object.keys(doneShards(out)).length >= 3, 120_000, '3 shards done');
    c1.proc.kill('SIGKILL');
    await c1.exited;
    const before = doneShards(out);
    expect(existsSync(join(out, 'run.json'))).toBe(false);
    expect(Object.keys(before).length).toBeLessThan(FAULT_SHARDS);
    const r = await runCli(fargs(out, '--queue', url));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`resuming: ${Object.keys(before).length} of ${FAULT_SHARDS} shards already done`));
    const after = doneShards(out);
    for (const k of Object.keys(before)) expect(after[k]).toEqual(before[k]); // kept, not recomputed
    expectSameScores(fref, readRun(out));
    const ran = await Promise.all(workers.map(stopWorker));
    expect(ran[0] + ran[1]).toBe(FAULT_SHARDS); // no shard computed twice
  }, 300_000);

  it('Redis restarted mid-run (its jobs lost): the run finishes, or stops with a clear error and a restart resumes it', async () => {
    const redis = await ownRedis();
    try {
      const url = `${redis.url}/restart`;
      const env = { RELP_TEST_SHARD_DELAY_MS: '300', RELP_REDIS_TIMEOUT_S: '20' };
      const workers = [keep(await startWorker(url, [], env)), keep(await startWorker(url, [], env))];
      const out = join(dir, 'redis-restart');
      const c1 = keep(relp(fargs(out, '--queue', url), env));
      await until(() => Object.keys(doneShards(out)).length >= 3, 120_000, '3 shards done');
      await redis.kill();
      await new Promise((r) => setTimeout(r, 1500));
      await redis.start();
      const code = await c1.exited;
      if (code !== 0) {
        expect(c1.out()).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/restart unreachable .* run the same command again to resume/);
        const r = await runCli(fargs(out, '--queue', url), { env });
        expect(r.code, r.stderr).toBe(0);
      } else {
        expect(c1.out()).toMatch(/lost Redis|gone from the queue/);
      }
      expectSameScores(fref, readRun(out));
      await Promise.all(workers.map(stopWorker));
    } finally {
      await redis.kill();
    }
  }, 300_000);

  it('a worker on a different model (one weight changed): its results are refused and cannot poison the run', async () => {
    const ck = await loadCheckpoint(EMBEDDED_MODEL_DIR);
    const sd = new Map([...ck.stateDict].map(([k, v]) => [k, { shape: [...v.shape], data: v.data.slice() }]));
    const t = sd.get('h.3.mlp.c_proj.bias')!;
    t.data[0] += 0.5;
    const other = makeTmpModelDir({ cfg: ck.config, stateDict: sd });
    try {
      const url = queueUrl('other-model');
      const bad = keep(await startWorker(url, ['--model', other.dir]));
      const out = join(dir, 'other-model');
      const coord = keep(relp(fargs(out, '--queue', url)));
      await until(() => /refused a result: shard \S+: computed on a different model/.test(coord.out()), 120_000, 'a refusal');
      bad.proc.kill('SIGKILL');
      expect(bad.out()).toMatch(/this worker's model .* is not the run's/);
      const good = keep(await startWorker(url));
      expect(await coord.exited, coord.out()).toBe(0);
      expectSameScores(fref, readRun(out));
      await stopWorker(good);
    } finally {
      other.cleanup();
    }
  }, 300_000);
});
