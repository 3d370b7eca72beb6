/**
 * Synchronous reads in Node.
 *
 * dawn.node resolves `mapAsync` from `wgpuInstanceProcessEvents`, which it runs in a callback it
 * queues with the global `setImmediate` (looked up at each call) while async work is pending. A
 * synchronous read cannot wait for the event loop, so from the first Dawn call on relp wraps
 * `setImmediate`: each native callback Dawn queues is remembered and may be run early, once (the
 * queued copy then does nothing). The read copies the tensor's buffer to a mappable one, calls
 * `mapAsync`, and runs the pending Dawn callbacks until the map completes. Results are identical
 * to the async `data()` path.
 */
import * as tf from '@tensorflow/tfjs';
import { throwNewErrors } from './gpu-errors.ts';
import type { GpuBufferLike, WebGPUBackendClass, WebGPUBackendInternals } from './gpu-types.ts';

let realSetImmediate: typeof setImmediate | undefined;
/** Dawn callbacks queued and not run yet, oldest first. */
const pendingPumps = new Set<() => void>();

function isNativeFunction(f: unknown): f is () => void {
  return typeof f === 'function' && Function.prototype.toString.call(f).includes('[native code]');
}

/**
 * Start remembering the native callbacks Dawn queues with `setImmediate`, so a synchronous read can
 * run them early. Call before the first Dawn call. Idempotent.
 */
export function wrapSetImmediate(): void {
  if (realSetImmediate) return;
  const real = globalThis.setImmediate;
  realSetImmediate = real;
  const wrapped = function (this: unknown, cb: (...a: unknown[]) => void, ...args: unknown[]) {
    if (args.length === 0 && isNativeFunction(cb)) {
      let done = false;
      const run = () => {
        if (done) return;
        done = true;
        pendingPumps.delete(run);
        cb();
      };
      pendingPumps.add(run);
      return real(run);
    }
    return real(cb, ...args);
  };
  // Keep util.promisify(setImmediate) and the other static members working.
  Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(real));
  globalThis.setImmediate = wrapped as typeof setImmediate;
}

/** Put the real `setImmediate` back (the backend is released, or no adapter was found). */
export function restoreSetImmediate(): void {
  if (!realSetImmediate) return;
  globalThis.setImmediate = realSetImmediate;
  realSetImmediate = undefined;
  // A queued wrapper still runs its Dawn callback when the loop gets to it.
  pendingPumps.clear();
}

let readSyncInstalled = false;

/**
 * Replace `WebGPUBackend.prototype.readSync` (OffscreenCanvas-based, browser only) for Node, and
 * make both reads throw the GPU errors seen since the last read. Idempotent.
 */
export function installReadSync(Backend: WebGPUBackendClass): void {
  if (readSyncInstalled) return;
  readSyncInstalled = true;
  const original = Backend.prototype.readSync;
  Backend.prototype.readSync = function (this: WebGPUBackendInternals, dataId: object) {
    const data = this.tensorMap.get(dataId);
    if (data.values != null || data.dtype === 'string' || data.dtype === 'complex64') return original.call(this, dataId);
    const resource = data.resource as GpuBufferLike;
    if (typeof resource?.mapAsync !== 'function') return original.call(this, dataId); // textures: not used by relp
    const bytes = readBufferSync(this, resource);
    throwNewErrors();
    return this.convertAndCacheOnCPU(dataId, tf.util.convertBackendValuesAndArrayBuffer(bytes, data.dtype));
  };
  const read = Backend.prototype.read;
  Backend.prototype.read = async function (this: WebGPUBackendInternals, dataId: object) {
    const values = await read.call(this, dataId);
    throwNewErrors();
    return values;
  };
}

const MAP_READ = 0x0001; // GPUBufferUsage.MAP_READ
const COPY_DST = 0x0008; // GPUBufferUsage.COPY_DST
const MAP_MODE_READ = 0x0001; // GPUMapMode.READ

/** Copy `buffer` to a mappable staging buffer and map it, running Dawn's event processing in place. */
function readBufferSync(backend: WebGPUBackendInternals, buffer: GpuBufferLike): ArrayBuffer {
  const staging = backend.bufferManager.acquireBuffer(buffer.size, COPY_DST | MAP_READ);
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.commandEncoder.copyBufferToBuffer(buffer, 0, staging, 0, buffer.size);
  backend.submitQueue();
  let failure: unknown;
  staging.mapAsync(MAP_MODE_READ).catch((e: unknown) => (failure = e));
  while (staging.mapState === 'pending') {
    const pump = pendingPumps.values().next().value;
    if (!pump) {
      throw new Error('webgpu: a synchronous read (dataSync/arraySync) found no pending Dawn event processing to run; use `await tensor.data()` instead');
    }
    pump();
  }
  if (staging.mapState !== 'mapped') {
    backend.bufferManager.releaseBuffer(staging);
    throw new Error(`webgpu: reading a tensor back from the GPU failed${failure ? `: ${(failure as Error).message}` : ''}`);
  }
  const out = staging.getMappedRange().slice(0);
  staging.unmap();
  backend.bufferManager.releaseBuffer(staging);
  return out;
}
