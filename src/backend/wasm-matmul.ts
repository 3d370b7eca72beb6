/**
 * Fix for the wasm backend's slow transposed matmul.
 *
 * tfjs-backend-wasm 4.x runs `BatchMatMul` with `transposeA`/`transposeB` 10–40× slower than the
 * plain kernel (measured: 510 ms vs 19–52 ms for [128,768]×[768,3072]). Every backward pass of a
 * matmul uses transposed matmuls, so we re-register the kernel: transpose the flagged operand with
 * the wasm `Transpose` kernel, then call the original kernel with both flags off.
 */
import * as tf from '@tensorflow/tfjs';

type KernelConfig = NonNullable<ReturnType<typeof tf.getKernel>>;
type KernelArgs = Parameters<KernelConfig['kernelFunc']>[0];
type KernelBackend = KernelArgs['backend'];

interface DisposableBackend {
  disposeData(dataId: object): boolean | void;
}

let installed = false;

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return perm;
}

/**
 * A·Bᵀ as (B·Aᵀ)ᵀ for 2-D operands (or 3-D with a batch of one) when that moves less data: transposing A, packing Aᵀ for XNNPACK
 * and transposing the result (2·M·K + M·N floats) instead of transposing B and packing it (2·N·K). This is the backward of
 * every weight matmul, dX = dY·Wᵀ, where M (= batch·pos) is small next to the weight: 5× less data
 * for GPT-2's block matrices at M = 128, 95× for the unembedding. Returns undefined when not
 * applicable (batched operands, or when the plain route is cheaper).
 */
function transposeBBySwap(args: KernelArgs, original: KernelConfig, transpose: KernelConfig): tf.TensorInfo | undefined {
  const a = args.inputs.a as tf.TensorInfo;
  const b = args.inputs.b as tf.TensorInfo;
  // 2-D operands, or 3-D with a batch of one (tf.matMul hands BatchMatMul [1, m, k] for 2-D inputs).
  const r = a.shape.length;
  if (r !== b.shape.length || (r !== 2 && !(r === 3 && a.shape[0] === 1 && b.shape[0] === 1))) return undefined;
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[r - 2];
  // Floats moved: transpose A + pack Aᵀ + transpose C (swap) vs. transpose B + pack it (plain).
  if (2 * m * k + m * n >= 2 * n * k) return undefined;
  const backend = args.backend;
  const perm = swapLastTwo(r);
  const aT = transpose.kernelFunc({ inputs: { x: a }, backend, attrs: { perm } }) as tf.TensorInfo; // [(1,) k, m]
  const cT = original.kernelFunc({ inputs: { a: b, b: aT }, backend, attrs: { ...args.attrs, transposeA: false, transposeB: false } }) as tf.TensorInfo; // [(1,) n, m]
  const c = transpose.kernelFunc({ inputs: { x: cT }, backend, attrs: { perm } }) as tf.TensorInfo; // [(1,) m, n]
  (backend as unknown as DisposableBackend).disposeData(aT.dataId);
  (backend as unknown as DisposableBackend).disposeData(cT.dataId);
  return c;
}

function wrap(kernelName: string): void {
  const original = tf.getKernel(kernelName, 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!original || !transpose) return;
  const kernelFunc = (args: KernelArgs) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean } & Record<string, unknown>;
    if (!attrs.transposeA && !attrs.transposeB) return original.kernelFunc(args);
    if (kernelName === 'BatchMatMul' && attrs.transposeB && !attrs.transposeA) {
      const swapped = transposeBBySwap(args, original, transpose);
      if (swapped) return swapped;
    }
    const backend: KernelBackend = args.backend;
    const inputs = { ...args.inputs } as Record<string, tf.TensorInfo>;
    const temps: tf.TensorInfo[] = [];
    for (const [key, flag] of [
      ['a', attrs.transposeA],
      ['b', attrs.transposeB],
    ] as const) {
      if (!flag) continue;
      const x = inputs[key];
      const t = transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm: swapLastTwo(x.shape.length) } }) as tf.TensorInfo;
      temps.push(t);
      inputs[key] = t;
    }
    const out = original.kernelFunc({ inputs, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    for (const t of temps) (backend as unknown as DisposableBackend).disposeData(t.dataId);
    return out;
  };
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', setupFunc: original.setupFunc, kernelFunc });
}

interface RefCountedBackend {
  incRef(dataId: object): void;
}

/**
 * Zero-copy `Identity` on wasm. tfjs clones every tensor it saves for a backward pass through
 * `Identity`, and the wasm kernel copies the whole buffer: a forward under a gradient tape copies
 * every weight matrix it touches (0.5 GB for GPT-2 small) and every saved activation. Tensors are
 * immutable and the wasm backend reference-counts buffers (its Reshape shares them the same way),
 * so the clone can share its input's buffer, as the cpu backend's Identity does.
 */
function shareIdentity(): void {
  const original = tf.getKernel('Identity', 'wasm');
  if (!original) return;
  const kernelFunc = (args: KernelArgs) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    if (x.dtype === 'string') return original.kernelFunc(args);
    (args.backend as unknown as RefCountedBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  };
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ kernelName: 'Identity', backendName: 'wasm', setupFunc: original.setupFunc, kernelFunc });
}

/** Re-register the wasm matmul kernels (idempotent). Call after the wasm backend is active. */
export function installWasmMatmulFix(): void {
  if (installed) return;
  wrap('BatchMatMul');
  wrap('_FusedMatMul');
  shareIdentity();
  installed = true;
}

/** Whether {@link installWasmMatmulFix} has run in this process. */
export function wasmMatmulFixInstalled(): boolean {
  return installed;
}
