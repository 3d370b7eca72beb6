/**
 * The browser globals tfjs-backend-webgpu expects, provided in Node for no longer than needed:
 * the WebGPU constants for the backend's lifetime, `navigator.gpu` only while it is constructed.
 */
import type { GpuLike } from './gpu-types.ts';

/** The native-global names this module added to globalThis (removed again on release). */
const addedGlobals: string[] = [];

/** tfjs-backend-webgpu uses the WebGPU constants (GPUBufferUsage, GPUMapMode, GPUBuffer, ...) as globals. */
export function installGlobals(globals: Record<string, unknown>): void {
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals)) {
    if (!(k in g)) {
      g[k] = v;
      addedGlobals.push(k);
    }
  }
}

/** Remove the globals {@link installGlobals} added. */
export function removeAddedGlobals(): void {
  for (const k of addedGlobals.splice(0)) delete (globalThis as Record<string, unknown>)[k];
}

/**
 * The WebGPUBackend constructor refuses to run unless `navigator.gpu` exists. Keeping the Dawn
 * instance on a global would keep Node alive, so it is there only while the backend is built.
 */
export function withNavigatorGpu<T>(gpu: GpuLike | undefined, f: () => T): T {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  const hadNavigator = 'navigator' in globalThis && g.navigator !== undefined;
  const nav = hadNavigator ? g.navigator! : {};
  const had = 'gpu' in nav;
  if (!had) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
  if (!hadNavigator) Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  try {
    return f();
  } finally {
    if (!had) delete (nav as { gpu?: unknown }).gpu;
    if (!hadNavigator) delete g.navigator;
  }
}
