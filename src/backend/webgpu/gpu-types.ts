/**
 * Minimal structural views of the WebGPU and tfjs-backend-webgpu objects that relp's `webgpu`
 * backend touches. The full types live in @webgpu/types and in tfjs-backend-webgpu's private
 * classes; importing them would make the optional `webgpu` package a compile-time need.
 */
import type * as tf from '@tensorflow/tfjs';

/** The fields of a `GPUAdapterInfo` that relp reads. */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

/** The parts of a `GPUBuffer` used by the synchronous read. */
export interface GpuBufferLike {
  readonly size: number;
  readonly mapState: 'unmapped' | 'pending' | 'mapped';
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}

/** The parts of a `GPUDevice` relp uses: limits, error events, loss and destruction. */
export interface GpuDeviceLike {
  destroy(): void;
  readonly lost: Promise<{ reason: string; message: string }>;
  readonly limits: { readonly maxStorageBuffersPerShaderStage: number; readonly maxStorageBufferBindingSize: number };
  addEventListener(type: 'uncapturederror', f: (e: { error: { message: string }; preventDefault(): void }) => void): void;
}

/** The parts of a `GPUAdapter` relp uses. */
export interface GpuAdapterLike {
  readonly info: AdapterInfoLike;
  readonly limits: object;
  requestDevice(desc?: { requiredLimits?: Record<string, number> }): Promise<GpuDeviceLike>;
}

/** A Dawn instance (`navigator.gpu` in a browser). */
export interface GpuLike {
  requestAdapter(opts?: { featureLevel?: string; powerPreference?: string }): Promise<GpuAdapterLike | null>;
}

/** The `webgpu` npm package (dawn.node). */
export interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** The private parts of tfjs-backend-webgpu's `WebGPUBackend` that the read fix uses. */
export interface WebGPUBackendInternals {
  tensorMap: { get(dataId: object): { values: tf.backend_util.BackendValues | null; dtype: tf.DataType; resource: unknown } };
  bufferManager: { acquireBuffer(size: number, usage: number): GpuBufferLike; releaseBuffer(b: GpuBufferLike): void };
  commandEncoder: { copyBufferToBuffer(src: GpuBufferLike, so: number, dst: GpuBufferLike, doff: number, size: number): void };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  convertAndCacheOnCPU(dataId: object, data: tf.backend_util.BackendValues): tf.backend_util.BackendValues;
}

/** A compiled tfjs-backend-webgpu program (the fields the size guard reads). */
export interface WebGPUProgramLike {
  outputShape: number[];
  constructor: { name: string };
}

/** `WebGPUBackend.prototype.runWebGPUProgram`. */
export type RunProgram = (program: WebGPUProgramLike, inputs: tf.TensorInfo[], ...rest: unknown[]) => tf.TensorInfo;

/** tfjs-backend-webgpu's `WebGPUBackend` class, with the prototype methods relp wraps. */
export type WebGPUBackendClass = {
  new (device: GpuDeviceLike, info?: AdapterInfoLike): tf.KernelBackend;
  prototype: {
    readSync(dataId: object): tf.backend_util.BackendValues;
    read(dataId: object): Promise<tf.backend_util.BackendValues>;
    runWebGPUProgram: RunProgram;
    disposeData(dataId: object, force?: boolean): boolean;
  };
};
