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

function wrap(kernelName: string): void {
  const original = tf.getKernel(kernelName, 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!original || !transpose) return;
  const kernelFunc = (args: KernelArgs) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean } & Record<string, unknown>;
    if (!attrs.transposeA && !attrs.transposeB) return original.kernelFunc(args);
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

/** Re-register the wasm matmul kernels (idempotent). Call after the wasm backend is active. */
export function installWasmMatmulFix(): void {
  if (installed) return;
  wrap('BatchMatMul');
  wrap('_FusedMatMul');
  installed = true;
}

/** Whether {@link installWasmMatmulFix} has run in this process. */
export function wasmMatmulFixInstalled(): boolean {
  return installed;
}
