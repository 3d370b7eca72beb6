/**
 * Opening and releasing the `webgpu` backend: find a device, install the Node fixes on
 * tfjs-backend-webgpu, register the backend, and tear it all down again so Node can exit.
 */
import * as tf from '@tensorflow/tfjs';
import { availableAttempts, describeAdapter, noAdapterReason, requestDawnDevice } from './adapter.ts';
import { stopWatchingErrors, watchErrors } from './gpu-errors.ts';
import type { DawnModule, GpuDeviceLike, GpuLike, WebGPUBackendClass } from './gpu-types.ts';
import { installKernelWorkarounds, setDeviceLimits } from './kernels.ts';
import { installGlobals, removeAddedGlobals, withNavigatorGpu } from './node-globals.ts';
import { installReadSync, restoreSetImmediate, wrapSetImmediate } from './read-sync.ts';

/** The active WebGPU adapter. */
export interface WebgpuAdapter {
  /** Which attempt gave it (`vulkan`, `opengl`, `default`). */
  route: string;
  /** Adapter name and driver description. */
  description: string;
  /** True for llvmpipe and other software adapters. */
  software: boolean;
}

/** Result of {@link openWebgpu}: the adapter, or why there is none. */
export type WebgpuOpenResult = { ok: true; adapter: WebgpuAdapter } | { ok: false; reason: string };

interface WebgpuState {
  adapter: WebgpuAdapter;
  device: GpuDeviceLike;
  gpu: GpuLike | undefined;
}

let state: WebgpuState | undefined;

async function importOptional<T>(spec: string): Promise<T | undefined> {
  try {
    return (await import(spec)) as T;
  } catch {
    return undefined;
  }
}

/**
 * Find an adapter and register the tfjs backend `webgpu` on it (it is not activated: call
 * `tf.setBackend('webgpu')`). Idempotent while the backend is registered.
 * @param opts.allowSoftware accept a software adapter (explicit `RELP_BACKEND=webgpu`); automatic
 *   selection passes false so that only a real GPU is taken.
 */
export async function openWebgpu(opts: { allowSoftware: boolean }): Promise<WebgpuOpenResult> {
  if (state) {
    if (state.adapter.software && !opts.allowSoftware) return { ok: false, reason: `only a software adapter is available (${state.adapter.description})` };
    return { ok: true, adapter: state.adapter };
  }
  const tried: string[] = [];
  const attempts = availableAttempts(opts.allowSoftware, tried);
  if (attempts.length === 0) return { ok: false, reason: `no WebGPU adapter to try: ${tried.join('; ')}` };
  const dawn = await importOptional<DawnModule>('webgpu');
  if (!dawn) return { ok: false, reason: 'the optional package "webgpu" (Dawn for Node) cannot be imported; install it with npm' };
  const tfwg = await importOptional<{ WebGPUBackend: WebGPUBackendClass }>('@tensorflow/tfjs-backend-webgpu');
  if (!tfwg) return { ok: false, reason: 'the optional package "@tensorflow/tfjs-backend-webgpu" cannot be imported; install it with npm' };

  // Before any Dawn call: every event-processing callback Dawn queues must go through the wrapper.
  wrapSetImmediate();
  const found = await requestDawnDevice(dawn, attempts, opts.allowSoftware, tried);
  if (!found) {
    restoreSetImmediate();
    return { ok: false, reason: noAdapterReason(tried, opts.allowSoftware) };
  }
  const { gpu, info, device } = found;
  installGlobals(dawn.globals);
  installReadSync(tfwg.WebGPUBackend);
  installKernelWorkarounds(tfwg.WebGPUBackend);
  const summary: WebgpuAdapter = { route: found.route, description: describeAdapter(info), software: found.software };
  state = { adapter: summary, device, gpu };
  watchErrors(device);
  setDeviceLimits(device.limits, () => state?.adapter.description);
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  const Backend = tfwg.WebGPUBackend;
  tf.registerBackend('webgpu', () => withNavigatorGpu(gpu, () => new Backend(device, info)), 3);
  process.once('beforeExit', releaseWebgpu);
  return { ok: true, adapter: summary };
}

/**
 * The `GPUDevice` behind the backend (for custom WebGPU work next to tfjs), or undefined when the
 * backend is not open. Typed `unknown` so relp needs no WebGPU type package; cast it to `GPUDevice`.
 */
export function webgpuDevice(): unknown {
  return state?.device;
}

/** The adapter in use, when the webgpu backend is registered. */
export function webgpuAdapter(): WebgpuAdapter | undefined {
  return state?.adapter;
}

/**
 * Remove the `webgpu` backend, destroy the device and drop the Dawn instance so Node can exit.
 * Safe to call more than once; a later {@link openWebgpu} starts afresh.
 */
export function releaseWebgpu(): void {
  if (!state) return;
  const { device } = state;
  state = undefined;
  stopWatchingErrors();
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu'); // disposes the backend's buffers
  device.destroy();
  restoreSetImmediate();
  removeAddedGlobals();
}
