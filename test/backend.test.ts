/**
 * Backend selection: automatic order, RELP_BACKEND override, clear errors.
 *
 * The backend is per process, so the override cases run in a child `node --import tsx` process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { currentBackend, initBackend } from '../src/backend.ts';
import { wasmMatmulFixInstalled } from '../src/backend/wasm-matmul.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Whether a native tfjs binding is installed AND loads (then the automatic pick is 'tensorflow').
 * A package whose install step was skipped (npm blocks dependency install scripts) resolves but
 * has no binary, so only a real import in a child process tells.
 */
function nativeInstalled(): boolean {
  const req = createRequire(import.meta.url);
  for (const p of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      req.resolve(p);
    } catch {
      continue; // not installed
    }
    const r = spawnSync(process.execPath, ['-e', `import(${JSON.stringify(p)}).then(() => process.exit(0), () => process.exit(1))`], { cwd: ROOT, stdio: 'ignore' });
    if (r.status === 0) return true;
  }
  return false;
}

/** Whether the machine exposes a GPU device node (then automatic selection may take webgpu). */
function gpuDevicePresent(): boolean {
  if (existsSync('/dev/nvidia0')) return true;
  try {
    return readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  } catch {
    return false;
  }
}

/** Run a snippet in a fresh process; it prints one JSON line. `env` entries set to undefined are removed. */
function child(code: string, env: Record<string, string | undefined>): { status: number | null; stdout: string; stderr: string } {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete e[k];
    else e[k] = v;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: e,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const PRINT_BACKEND = `
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './src/backend.ts';
import { wasmMatmulFixInstalled } from './src/backend/wasm-matmul.ts';
const name = await initBackend();
console.log(JSON.stringify({ name, got: tf.getBackend(), fix: wasmMatmulFixInstalled() }));
`;

function lastJson(stdout: string): { name: string; got: string; fix: boolean } {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('initBackend', () => {
  it('in this process: the backend the setup picked is what tf.getBackend() reports', async () => {
    const name = await initBackend();
    expect(tf.getBackend()).toBe(name);
    expect(currentBackend()).toBe(name);
    // Calling again is a no-op returning the same backend.
    expect(await initBackend()).toBe(name);
    if (name === 'wasm') expect(wasmMatmulFixInstalled()).toBe(true);
  });

  it('picks tensorflow > webgpu (real GPU only) > wasm > cpu automatically (wasm on a CPU-only machine)', () => {
    const r = child(PRINT_BACKEND, { RELP_BACKEND: undefined });
    expect(r.status, r.stderr).toBe(0);
    const out = lastJson(r.stdout);
    expect(out.got).toBe(out.name);
    if (nativeInstalled()) expect(out.name).toBe('tensorflow');
    else if (gpuDevicePresent()) expect(['webgpu', 'wasm']).toContain(out.name);
    else expect(out.name).toBe('wasm'); // a software WebGPU adapter is never picked automatically
    // The transposed-matmul fix is installed whenever wasm is active.
    expect(out.fix).toBe(out.name === 'wasm');
  });

  it('honours RELP_BACKEND=cpu', () => {
    const r = child(PRINT_BACKEND, { RELP_BACKEND: 'cpu' });
    expect(r.status, r.stderr).toBe(0);
    const out = lastJson(r.stdout);
    expect(out).toEqual({ name: 'cpu', got: 'cpu', fix: false });
  });

  it('honours RELP_BACKEND=wasm', () => {
    const r = child(PRINT_BACKEND, { RELP_BACKEND: 'wasm' });
    expect(r.status, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toEqual({ name: 'wasm', got: 'wasm', fix: true });
  });

  it('an unknown RELP_BACKEND fails with a message naming the value and the valid ones', () => {
    const r = child(PRINT_BACKEND, { RELP_BACKEND: 'webgpu-bogus' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('"webgpu-bogus" is not a known backend');
    expect(r.stderr).toMatch(/use one of: tensorflow, wasm, cpu/);
  });

  it('an unknown name passed as argument throws in-process without changing the backend', async () => {
    const before = tf.getBackend();
    await expect(initBackend('nope')).rejects.toThrow(/"nope" is not a known backend/);
    expect(tf.getBackend()).toBe(before);
  });

  it.skipIf(nativeInstalled())('RELP_BACKEND=tensorflow without a native binding names the package to install', () => {
    const r = child(PRINT_BACKEND, { RELP_BACKEND: 'tensorflow' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/@tensorflow\/tfjs-node-gpu.*cannot be imported/);
  });
});
