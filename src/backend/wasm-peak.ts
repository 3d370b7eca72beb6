/**
 * Peak bytes of live wasm buffers during a call, for checking the memory guard's estimate
 * (tests) and for the scaling benchmark. Buffers are counted where the wasm backend allocates
 * them (`move`) and frees them (`disposeData` once the last reference goes), so tensors sharing a
 * buffer (reshape, clones) count once and buffers a kernel allocates and frees internally are seen.
 */
import * as tf from '@tensorflow/tfjs';

interface WasmHeapInternals {
  move: (dataId: object, values: unknown, shape: number[], dtype: string, refCount: number) => void;
  disposeData: (dataId: object, force?: boolean) => boolean;
  dataIdMap: { has: (dataId: object) => boolean };
}

/** Run `fn` and report the peak bytes of wasm buffers above what was live before it (wasm only). */
export function wasmPeakBytesDuring<T>(fn: () => T): { result: T; peakBytes: number } {
  if (tf.getBackend() !== 'wasm') throw new Error(`wasmPeakBytesDuring needs the wasm backend (active: ${tf.getBackend()})`);
  const be = tf.backend() as unknown as WasmHeapInternals;
  const { move, disposeData } = be;
  const sizes = new Map<object, number>();
  let live = 0;
  let peak = 0;
  be.move = (dataId, values, shape, dtype, refCount) => {
    move.call(be, dataId, values, shape, dtype, refCount);
    const n = shape.reduce((a, b) => a * b, 1) * (dtype === 'bool' ? 1 : 4);
    sizes.set(dataId, n);
    live += n;
    if (live > peak) peak = live;
  };
  be.disposeData = (dataId, force) => {
    const r = disposeData.call(be, dataId, force);
    const n = sizes.get(dataId);
    if (n !== undefined && !be.dataIdMap.has(dataId)) {
      live -= n;
      sizes.delete(dataId);
    }
    return r;
  };
  try {
    const result = fn();
    return { result, peakBytes: peak };
  } finally {
    be.move = move;
    be.disposeData = disposeData;
  }
}

/**
 * Size of the wasm backend's heap now, in bytes (undefined on other backends). The heap only
 * grows, so this is the process's peak heap so far.
 */
export function wasmHeapBytes(): number | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const be = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return be.wasm?.HEAPU8?.byteLength;
}

