/**
 * Redis for the distributed tests. They read RELP_REDIS_URL (redis://127.0.0.1:PORT, set by
 * .ci/run) and skip only when it is unset AND RELP_REQUIRE_REDIS is unset. The Redis-restart test
 * starts its own redis-server (it must kill and restart it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { RELP_BIN } from '../cli/run-cli.ts';

/** The URL of the shared Redis, if any. */
export const REDIS_URL = process.env.RELP_REDIS_URL?.replace(/\/+$/, '');
/** Skip the Redis tests? Only when no URL is given and Redis is not required. */
export const SKIP_REDIS = !REDIS_URL && !process.env.RELP_REQUIRE_REDIS;

/** A fresh queue URL on the shared Redis (unique name per call). */
export function queueUrl(tag: string): string {
  if (!REDIS_URL) throw new Error('RELP_REQUIRE_REDIS is set but RELP_REDIS_URL is not: start redis-server and export RELP_REDIS_URL=redis://127.0.0.1:PORT');
  return `${REDIS_URL}/${tag}-${randomBytes(4).toString('hex')}`;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** An own redis-server (no persistence: a restart loses every job) that can be killed and restarted. */
export interface OwnRedis {
  url: string;
  kill(): Promise<void>;
  start(): Promise<void>;
}

export async function ownRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const bin = process.env.RELP_REDIS_SERVER ?? 'redis-server';
  let proc: ChildProcess | undefined;
  const r: OwnRedis = {
    url: `redis://127.0.0.1:${port}`,
    start: async () => {
      proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
      await waitFor(proc, /Ready to accept connections/, 10_000, 'stdout');
    },
    kill: async () => {
      if (!proc || proc.exitCode !== null) return;
      const p = proc;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    },
  };
  await r.start();
  return r;
}

/** A child process with its captured output. */
export interface Child {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

/** Spawn `relp ...args` (stdout and stderr captured). */
export function relp(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, [RELP_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  proc.stdout!.on('data', (b: Buffer) => (buf += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (buf += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, out: () => buf, exited };
}

/** Wait until a process prints a line matching `re`. */
export function waitFor(proc: ChildProcess, re: RegExp, ms: number, stream: 'stdout' | 'stderr' | 'both' = 'both'): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} in: ${buf.slice(-2000)}`)), ms);
    const on = (b: Buffer) => {
      buf += b.toString();
      if (re.test(buf)) {
        clearTimeout(t);
        resolve();
      }
    };
    if (stream !== 'stderr') proc.stdout?.on('data', on);
    if (stream !== 'stdout') proc.stderr?.on('data', on);
    proc.once('exit', () => {
      clearTimeout(t);
      if (!re.test(buf)) reject(new Error(`process exited before ${re}: ${buf.slice(-2000)}`));
    });
  });
}

/** Start `relp worker` on a queue and wait until it is connected. */
export async function startWorker(url: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const c = relp(['worker', '--queue', url, '--workers', '1', ...extra], env);
  await waitFor(c.proc, /thread\(s\) on /, 60_000);
  return c;
}

/** Stop a worker with SIGTERM and return how many shards it ran. */
export async function stopWorker(c: Child): Promise<number> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return NaN;
  c.proc.kill('SIGTERM');
  await c.exited;
  const m = /stopped after (\d+) shard/.exec(c.out());
  return m ? Number(m[1]) : NaN;
}
