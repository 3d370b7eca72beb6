/**
 * Backend selection for TensorFlow.js.
 *
 * Order: `tensorflow` (tfjs-node-gpu / tfjs-node, when importable) → `webgpu` (only on a real
 * GPU; see src/backend/webgpu.ts) → `wasm` → `cpu`.
 * `RELP_BACKEND=tensorflow|wasm|cpu|webgpu` forces one (`webgpu` then also accepts a software
 * adapter such as Mesa llvmpipe). After setting a backend we check `tf.getBackend()` because
 * `tf.setBackend` can silently fall back.
 */
import * as tf from '@tensorflow/tfjs';
import { installWasmMatmulFix } from './backend/wasm-matmul.ts';
import { openWebgpu, releaseWebgpu } from './backend/webgpu.ts';

/** Backends relp knows how to start. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu' | 'webgpu';

const KNOWN: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu', 'webgpu'];
/** Automatic order. webgpu is taken only with a real GPU adapter (a software one is slower than wasm). */
const AUTO_ORDER: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

async function tryImport(spec: string): Promise<boolean> {
  try {
    await import(spec);
    return true;
  } catch {
    return false;
  }
}

/** Why the last `register('webgpu')` failed, for the error message. */
let webgpuFailure = '';

async function register(name: BackendName, explicit: boolean): Promise<boolean> {
  if (name === 'cpu') return true; // bundled with @tensorflow/tfjs
  if (name === 'wasm') return tryImport('@tensorflow/tfjs-backend-wasm');
  if (name === 'webgpu') {
    const r = await openWebgpu({ allowSoftware: explicit });
    webgpuFailure = r.ok ? '' : r.reason;
    return r.ok;
  }
  // The native binding registers the 'tensorflow' backend on import.
  return (await tryImport('@tensorflow/tfjs-node-gpu')) || (await tryImport('@tensorflow/tfjs-node'));
}

async function activate(name: BackendName): Promise<void> {
  const ok = await tf.setBackend(name);
  await tf.ready();
  const got = tf.getBackend();
  if (!ok || got !== name) {
    throw new Error(`backend "${name}" failed to initialise (tf.getBackend() is "${got}")`);
  }
  if (name === 'wasm') installWasmMatmulFix();
}

let active: BackendName | undefined;

/**
 * Initialise the tfjs backend once per process and return its name.
 * @param preferred Force a backend; defaults to `process.env.RELP_BACKEND`, else automatic.
 */
export async function initBackend(preferred?: string): Promise<BackendName> {
  const wanted = preferred ?? process.env.RELP_BACKEND ?? '';
  if (active && (wanted === '' || wanted === active)) return active;
  if (wanted !== '') {
    if (!KNOWN.includes(wanted as BackendName)) {
      throw new Error(`RELP_BACKEND="${wanted}" is not a known backend (use one of: ${KNOWN.join(', ')})`);
    }
    const name = wanted as BackendName;
    if (!(await register(name, true))) {
      if (name === 'webgpu') throw new Error(`backend "webgpu" was requested but cannot start: ${webgpuFailure}`);
      const pkg = name === 'tensorflow' ? '@tensorflow/tfjs-node-gpu (or @tensorflow/tfjs-node)' : '@tensorflow/tfjs-backend-wasm';
      throw new Error(`backend "${name}" was requested but ${pkg} cannot be imported; install it or unset RELP_BACKEND`);
    }
    await activate(name);
    active = name;
    return name;
  }
  for (const name of AUTO_ORDER) {
    if (!(await register(name, false))) continue;
    try {
      await activate(name);
      active = name;
      return name;
    } catch {
      if (name === 'webgpu') releaseWebgpu(); // free the device before falling back
      // fall through to the next backend in order
    }
  }
  throw new Error(`no tfjs backend could be initialised (tried ${AUTO_ORDER.join(', ')})`);
}

/** The backend currently in use (after {@link initBackend}). */
export function currentBackend(): string {
  return tf.getBackend();
}
