/**
 * The `webgpu` backend: TensorFlow.js on WebGPU through Dawn (the optional `webgpu` npm package,
 * which ships a prebuilt `dawn.node`, plus `@tensorflow/tfjs-backend-webgpu`).
 *
 * What this module handles so that users do not have to:
 * - **Adapter options per platform.** On Linux, Dawn is tried on Vulkan first (a real GPU; skipped
 *   when libvulkan.so.1 is absent), then on OpenGL through EGL (Mesa llvmpipe on a CPU-only
 *   machine), which needs `EGL_PLATFORM=surfaceless` (no display), `create(['backend=opengl'])`
 *   and `requestAdapter({ featureLevel: 'compatibility' })` (Dawn's OpenGL backend only offers
 *   compatibility-mode adapters). Elsewhere Dawn's default backend (Metal, D3D12) is used.
 *   Automatic selection ({@link openWebgpu} with `allowSoftware: false`) tries only the GPU routes
 *   and refuses software adapters (llvmpipe, lavapipe, SwiftShader, WARP): they are slower than wasm.
 * - **Synchronous reads.** tfjs-backend-webgpu implements `dataSync()` with an `OffscreenCanvas`,
 *   which Node does not have; relp's sweeps read results synchronously, so `installReadSync`
 *   replaces it with a buffer copy + map that runs Dawn's event processing in place.
 * - **Loud GPU errors.** Dawn reports a failed kernel only on stdout, and the output is garbage;
 *   relp prints it on stderr and throws it at the next read.
 * - **Kernels that break on the device limits** (see webgpu/kernels.ts): AddN over more
 *   tensors than a shader may bind, and tensors over the storage-binding size (GPT-2 small's
 *   embedding on llvmpipe), with a clear error for any other kernel that would exceed it.
 * - **Clean exit.** The Dawn instance is never left on a global; {@link releaseWebgpu} removes the
 *   backend, destroys the device and drops the instance, and runs on `beforeExit`. (With webgpu
 *   0.6.2 on the OpenGL route no hang was seen even without it; the tests assert that children exit.)
 *
 * This module is the entry point; the parts live in src/backend/webgpu/: `adapter.ts` (routes,
 * software detection, device limits), `lifecycle.ts` (open, register, release), `read-sync.ts`,
 * `gpu-errors.ts`, `kernels.ts`, `node-globals.ts` and `gpu-types.ts`.
 */
export { dawnAttempts, describeAdapter, isSoftwareAdapter, type DawnAttempt } from './webgpu/adapter.ts';
export { webgpuErrors } from './webgpu/gpu-errors.ts';
export type { AdapterInfoLike } from './webgpu/gpu-types.ts';
export { openWebgpu, releaseWebgpu, webgpuAdapter, webgpuDevice, type WebgpuAdapter, type WebgpuOpenResult } from './webgpu/lifecycle.ts';
