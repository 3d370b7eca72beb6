/**
 * Kernel workarounds for the device limits. Each one is covered by a test in
 * test/backend/webgpu-parity.test.ts.
 *
 * - AddN over more tensors than a shader may bind is summed in chunks.
 * - Tensors over the storage-binding size (GPT-2 small's embedding on llvmpipe) go through CPU
 *   Transpose/Gather and a row-blocked MatMul; any other kernel that would exceed the limit fails
 *   with a clear error before it runs.
 */
import * as tf from '@tensorflow/tfjs';
import type { GpuDeviceLike, WebGPUBackendClass, WebGPUProgramLike } from './gpu-types.ts';

/** Bytes one storage-buffer binding may span (the device's limit; 128 MiB on llvmpipe). */
let maxBindingBytes = Number.POSITIVE_INFINITY;
/** Storage buffers one shader may bind (the device's limit; 16 on llvmpipe, 8 by WebGPU default). */
let maxStorageBuffers = 8;
/** Names the adapter in error messages (undefined when the backend is not open). */
let adapterName: () => string | undefined = () => undefined;
let bindingGuardInstalled = false;

/**
 * Wrap `WebGPUBackend`'s program runner and data disposal, and replace the AddN, Transpose,
 * GatherV2 and BatchMatMul kernels of the `webgpu` backend. Idempotent.
 */
export function installKernelWorkarounds(Backend: WebGPUBackendClass): void {
  installBindingGuard(Backend);
  installBlockDisposal(Backend);
  installKernelFixes();
}

/**
 * Set the limits the workarounds work with, from the device the backend runs on.
 * @param describe names the adapter for error messages
 */
export function setDeviceLimits(limits: GpuDeviceLike['limits'], describe: () => string | undefined): void {
  adapterName = describe;
  maxStorageBuffers = limits.maxStorageBuffersPerShaderStage;
  maxBindingBytes = bindingLimit(limits.maxStorageBufferBindingSize);
}

/**
 * The binding limit relp works with: the device's, or lower with `RELP_WEBGPU_MAX_BINDING_BYTES`
 * (tests use it to exercise the oversize-tensor kernels on tiny models).
 */
function bindingLimit(deviceLimit: number): number {
  const forced = Number(process.env.RELP_WEBGPU_MAX_BINDING_BYTES);
  return Number.isFinite(forced) && forced > 0 ? Math.min(forced, deviceLimit) : deviceLimit;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB = ${bytes} bytes`;

/**
 * Every tfjs-backend-webgpu kernel binds each whole input and output tensor as one storage
 * buffer. A tensor over the device's `maxStorageBufferBindingSize` (128 MiB on llvmpipe, e.g.
 * GPT-2 small's 50257 × 768 embedding at 147 MiB) makes Dawn reject the kernel. Check before the
 * kernel runs, so the error names the tensor and what to do, instead of a Dawn validation dump.
 */
function installBindingGuard(Backend: WebGPUBackendClass): void {
  if (bindingGuardInstalled) return;
  bindingGuardInstalled = true;
  const run = Backend.prototype.runWebGPUProgram;
  Backend.prototype.runWebGPUProgram = function (this: unknown, program: WebGPUProgramLike, inputs: tf.TensorInfo[], ...rest: unknown[]) {
    const tensors: { role: string; shape: number[] }[] = [
      ...inputs.map((t, i) => ({ role: `input ${i}`, shape: t.shape })),
      { role: 'output', shape: program.outputShape },
    ];
    for (const t of tensors) {
      const bytes = 4 * tf.util.sizeFromShape(t.shape); // float32, int32 and bool are all stored as 4 bytes
      if (bytes > maxBindingBytes) {
        throw new Error(
          `webgpu: ${program.constructor.name} needs its ${t.role} [${t.shape.join(', ')}] (${mb(bytes)}) in one storage binding, ` +
            `over this adapter's limit of ${mb(maxBindingBytes)} (${adapterName() ?? 'unknown adapter'}). ` +
            'Use smaller batches, or RELP_BACKEND=wasm on this machine (a GPU adapter allows larger bindings).',
        );
      }
    }
    return run.call(this, program, inputs, ...rest);
  };
}

let kernelFixesInstalled = false;

type KernelConfig = NonNullable<ReturnType<typeof tf.getKernel>>;
type KernelArgs = Parameters<KernelConfig['kernelFunc']>[0];

/**
 * AddN: tfjs-backend-webgpu compiles one shader binding every input plus the output, so adding
 * more than (limit − 1) tensors fails validation ("The number of storage buffers (17) in the
 * Compute stage exceeds the maximum per-stage limit (16)") and returns garbage. relp's gradient
 * sweeps add one term per hooked activation, so we sum in chunks that fit.
 */
function chunkedAddN(original: KernelConfig): KernelConfig['kernelFunc'] {
  return (args: KernelArgs) => {
    let terms = args.inputs as unknown as tf.TensorInfo[];
    const maxInputs = Math.max(2, maxStorageBuffers - 1);
    if (terms.length <= maxInputs) return original.kernelFunc(args);
    const backend = args.backend as unknown as { disposeData(id: object): void };
    const temps: tf.TensorInfo[] = [];
    while (terms.length > maxInputs) {
      const next: tf.TensorInfo[] = [];
      for (let i = 0; i < terms.length; i += maxInputs) {
        const chunk = terms.slice(i, i + maxInputs);
        if (chunk.length === 1) {
          next.push(chunk[0]);
          continue;
        }
        const partial = original.kernelFunc({ ...args, inputs: chunk as unknown as KernelArgs['inputs'] }) as tf.TensorInfo;
        temps.push(partial);
        next.push(partial);
      }
      terms = next;
    }
    const out = original.kernelFunc({ ...args, inputs: terms as unknown as KernelArgs['inputs'] });
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  };
}

/** Replace a webgpu kernel by `make(original)`. */
function override(kernelName: string, make: (original: KernelConfig) => KernelConfig['kernelFunc']): void {
  const original = tf.getKernel(kernelName, 'webgpu');
  if (!original) return;
  tf.unregisterKernel(kernelName, 'webgpu');
  tf.registerKernel({ ...original, kernelFunc: make(original) });
}

function installKernelFixes(): void {
  if (kernelFixesInstalled) return;
  override('AddN', chunkedAddN);
  override('Transpose', oversizeTranspose);
  override('GatherV2', oversizeGather);
  override('BatchMatMul', oversizeMatMul);
  kernelFixesInstalled = true;
}

// Tensors over the storage-binding limit.
//
// GPT-2 small's token embedding (50257 × 768 floats, 147 MiB) is over llvmpipe's 128 MiB binding
// limit, and the embedding, its transpose (the unembedding) and the matmuls that use it cannot run
// as single kernels. A buffer can still be *copied* whole, so such a tensor is kept (or read back)
// on the CPU and only used through these kernels:
// - Transpose (rank 2) and GatherV2 (axis 0) of it run on the CPU: once per model, and a few rows;
// - BatchMatMul with it as `b` is split into row blocks that fit, uploaded once and cached while
//   the tensor lives; partial products are summed (rows = contraction) or concatenated
//   (transposeB: rows = output columns).

/** Backend internals the oversize kernels use. */
interface FixBackend {
  tensorMap: { get(dataId: object): { values: tf.backend_util.BackendValues | null } };
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

const bytesOf = (t: tf.TensorInfo) => 4 * tf.util.sizeFromShape(t.shape);
const oversize = (t: tf.TensorInfo) => bytesOf(t) > maxBindingBytes;

/** The values of a tensor on the CPU (read back with a buffer copy when it lives on the GPU). */
function cpuValues(backend: FixBackend, t: tf.TensorInfo): tf.TypedArray {
  return (backend.tensorMap.get(t.dataId).values ?? backend.readSync(t.dataId)) as tf.TypedArray;
}

function oversizeTranspose(original: KernelConfig): KernelConfig['kernelFunc'] {
  return (args: KernelArgs) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    const perm = (args.attrs as { perm: number[] }).perm;
    if (!oversize(x) || x.shape.length !== 2 || perm[0] !== 1) return original.kernelFunc(args);
    const backend = args.backend as unknown as FixBackend;
    const v = cpuValues(backend, x);
    const [r, c] = x.shape;
    const out = new (v.constructor as new (n: number) => tf.TypedArray)(v.length);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = v[i * c + j];
    return backend.makeTensorInfo([c, r], x.dtype, out);
  };
}

function oversizeGather(original: KernelConfig): KernelConfig['kernelFunc'] {
  return (args: KernelArgs) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    if (!oversize(x) || tf.util.parseAxisParam(axis, x.shape)[0] !== 0 || batchDims !== 0) return original.kernelFunc(args);
    const backend = args.backend as unknown as FixBackend;
    const v = cpuValues(backend, x);
    const idx = cpuValues(backend, indices);
    const rows = x.shape[0];
    const row = v.length / rows;
    const out = new (v.constructor as new (n: number) => tf.TypedArray)(idx.length * row);
    idx.forEach((k, i) => {
      if (!(k >= 0 && k < rows)) throw new Error(`gather: index ${k} at position ${i} is outside [0, ${rows})`);
      out.set(v.subarray(k * row, (k + 1) * row), i * row);
    });
    return backend.makeTensorInfo([...indices.shape, ...x.shape.slice(1)], x.dtype, out);
  };
}

/** Row blocks of an oversize matrix, uploaded once per tensor; freed with it (see disposeData below). */
const rowBlocks = new WeakMap<object, { starts: number[]; blocks: tf.TensorInfo[] }>();

function blocksOf(backend: FixBackend, b: tf.TensorInfo): { starts: number[]; blocks: tf.TensorInfo[] } {
  const hit = rowBlocks.get(b.dataId);
  if (hit) return hit;
  const rows = b.shape[b.shape.length - 2];
  const cols = b.shape[b.shape.length - 1];
  const per = Math.max(1, Math.floor(maxBindingBytes / (4 * cols)));
  const v = cpuValues(backend, b);
  const starts: number[] = [];
  const blocks: tf.TensorInfo[] = [];
  for (let r0 = 0; r0 < rows; r0 += per) {
    const n = Math.min(per, rows - r0);
    starts.push(r0);
    blocks.push(backend.makeTensorInfo([n, cols], b.dtype, v.subarray(r0 * cols, (r0 + n) * cols)));
  }
  const entry = { starts, blocks };
  rowBlocks.set(b.dataId, entry);
  return entry;
}

function oversizeMatMul(original: KernelConfig): KernelConfig['kernelFunc'] {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    // Only a 2-D (or batch-1) oversize `b` is split; anything else meets the binding guard.
    if (!oversize(b) || oversize(a) || b.shape.slice(0, -2).some((d) => d !== 1)) return original.kernelFunc(args);
    const backend = args.backend as unknown as FixBackend;
    const kernel = (name: string) => tf.getKernel(name, 'webgpu')!.kernelFunc;
    const { starts, blocks } = blocksOf(backend, b);
    const temps: tf.TensorInfo[] = [];
    const mm = (x: tf.TensorInfo, blk: tf.TensorInfo) => {
      const out = original.kernelFunc({ ...args, inputs: { a: x, b: blk }, attrs: { ...args.attrs, transposeA, transposeB } }) as tf.TensorInfo;
      temps.push(out);
      return out;
    };
    let result: tf.TensorInfo;
    if (transposeB) {
      // b is [n, k] used as bᵀ: its rows are output columns. Concatenate the column blocks.
      const parts = blocks.map((blk) => mm(a, blk));
      result = kernel('Concat')({ inputs: parts as unknown as KernelArgs['inputs'], backend: args.backend, attrs: { axis: -1 } }) as tf.TensorInfo;
    } else {
      // b is [k, n]: its rows are the contraction. Multiply matching slices of a and sum.
      const kAxis = transposeA ? a.shape.length - 2 : a.shape.length - 1;
      const parts = blocks.map((blk, j) => {
        const begin = a.shape.map(() => 0);
        const size = a.shape.slice();
        begin[kAxis] = starts[j];
        size[kAxis] = blk.shape[0];
        const aj = kernel('Slice')({ inputs: { x: a }, backend: args.backend, attrs: { begin, size } }) as tf.TensorInfo;
        temps.push(aj);
        return mm(aj, blk);
      });
      result = kernel('AddN')({ inputs: parts as unknown as KernelArgs['inputs'], backend: args.backend, attrs: {} }) as tf.TensorInfo;
    }
    for (const t of temps) backend.disposeData(t.dataId);
    return result;
  };
}

let disposeHookInstalled = false;

/** Free an oversize tensor's cached row blocks when the tensor itself is freed. */
function installBlockDisposal(Backend: { prototype: { disposeData(dataId: object, force?: boolean): boolean } }): void {
  if (disposeHookInstalled) return;
  disposeHookInstalled = true;
  const dispose = Backend.prototype.disposeData;
  Backend.prototype.disposeData = function (this: unknown, dataId: object, force?: boolean) {
    const released = dispose.call(this, dataId, force);
    const entry = released ? rowBlocks.get(dataId) : undefined;
    if (entry) {
      rowBlocks.delete(dataId);
      for (const blk of entry.blocks) dispose.call(this, blk.dataId, true);
    }
    return released;
  };
}
