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
 * - **Kernels that break on the device limits** (see the end of this file): AddN over more
 *   tensors than a shader may bind, and tensors over the storage-binding size (GPT-2 small's
 *   embedding on llvmpipe), with a clear error for any other kernel that would exceed it.
 * - **Clean exit.** The Dawn instance is never left on a global; {@link releaseWebgpu} removes the
 *   backend, destroys the device and drops the instance, and runs on `beforeExit`. (With webgpu
 *   0.6.2 on the OpenGL route no hang was seen even without it; the tests assert that children exit.)
 */
import * as tf from '@tensorflow/tfjs';

/** The fields of a `GPUAdapterInfo` that relp reads. */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

// Minimal structural views of the WebGPU objects relp touches. The full types live in
// @webgpu/types; importing them would make the optional `webgpu` package a compile-time need.
interface GpuBufferLike {
  readonly size: number;
  readonly mapState: 'unmapped' | 'pending' | 'mapped';
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}
interface GpuDeviceLike {
  destroy(): void;
  readonly lost: Promise<{ reason: string; message: string }>;
  readonly limits: { readonly maxStorageBuffersPerShaderStage: number; readonly maxStorageBufferBindingSize: number };
  addEventListener(type: 'uncapturederror', f: (e: { error: { message: string }; preventDefault(): void }) => void): void;
}
interface GpuAdapterLike {
  readonly info: AdapterInfoLike;
  readonly limits: object;
  requestDevice(desc?: { requiredLimits?: Record<string, number> }): Promise<GpuDeviceLike>;
}
interface GpuLike {
  requestAdapter(opts?: { featureLevel?: string; powerPreference?: string }): Promise<GpuAdapterLike | null>;
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** The private parts of tfjs-backend-webgpu's `WebGPUBackend` that the read fix uses. */
interface WebGPUBackendInternals {
  tensorMap: { get(dataId: object): { values: tf.backend_util.BackendValues | null; dtype: tf.DataType; resource: unknown } };
  bufferManager: { acquireBuffer(size: number, usage: number): GpuBufferLike; releaseBuffer(b: GpuBufferLike): void };
  commandEncoder: { copyBufferToBuffer(src: GpuBufferLike, so: number, dst: GpuBufferLike, doff: number, size: number): void };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  convertAndCacheOnCPU(dataId: object, data: tf.backend_util.BackendValues): tf.backend_util.BackendValues;
}
/** A compiled tfjs-backend-webgpu program (the fields the size guard reads). */
interface WebGPUProgramLike {
  outputShape: number[];
  constructor: { name: string };
}
type RunProgram = (program: WebGPUProgramLike, inputs: tf.TensorInfo[], ...rest: unknown[]) => tf.TensorInfo;
type WebGPUBackendClass = {
  new (device: GpuDeviceLike, info?: AdapterInfoLike): tf.KernelBackend;
  prototype: {
    readSync(dataId: object): tf.backend_util.BackendValues;
    read(dataId: object): Promise<tf.backend_util.BackendValues>;
    runWebGPUProgram: RunProgram;
    disposeData(dataId: object, force?: boolean): boolean;
  };
};

/** One way of asking Dawn for an adapter. */
export interface DawnAttempt {
  /** Short name for messages: `vulkan`, `opengl` or `default`. */
  label: string;
  /** Flags for the `webgpu` package's `create()`, e.g. `['backend=opengl']`. */
  flags: string[];
  /** `requestAdapter` feature level: Dawn's OpenGL backend only offers `compatibility` adapters. */
  featureLevel: 'core' | 'compatibility';
  /** Environment variables to set (when unset) before the Dawn instance is created. */
  env?: Record<string, string>;
}

/**
 * The adapters to try, in order.
 * @param platform `process.platform`
 * @param allowSoftware also try the routes that only give software adapters here (OpenGL → llvmpipe)
 */
export function dawnAttempts(platform: NodeJS.Platform, allowSoftware: boolean): DawnAttempt[] {
  if (platform !== 'linux') {
    const out: DawnAttempt[] = [{ label: 'default', flags: [], featureLevel: 'core' }];
    if (allowSoftware) out.push({ label: 'default-compat', flags: [], featureLevel: 'compatibility' });
    return out;
  }
  const out: DawnAttempt[] = [{ label: 'vulkan', flags: ['backend=vulkan'], featureLevel: 'core' }];
  // Headless EGL: without EGL_PLATFORM=surfaceless Mesa looks for an X/Wayland display and fails.
  if (allowSoftware) out.push({ label: 'opengl', flags: ['backend=opengl'], featureLevel: 'compatibility', env: { EGL_PLATFORM: 'surfaceless' } });
  return out;
}

const SOFTWARE_ADAPTER = /llvmpipe|softpipe|swrast|lavapipe|swiftshader|software|basic render|\bwarp\b|null backend/i;

/** Whether an adapter is a software rasteriser rather than a GPU (by its info strings). */
export function isSoftwareAdapter(info: AdapterInfoLike): boolean {
  if (info.isFallbackAdapter) return true;
  return SOFTWARE_ADAPTER.test([info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' '));
}

/** One line naming an adapter, e.g. `llvmpipe-llvm-15-0-6-256-bits- (OpenGL version 4.5 ... Mesa 22.3.6)`. */
export function describeAdapter(info: AdapterInfoLike): string {
  const name = [info.vendor, info.architecture, info.device].filter(Boolean).join(' ') || 'unknown adapter';
  return info.description ? `${name} (${info.description})` : name;
}

/**
 * Whether the Vulkan loader can be loaded (Linux). Without it Dawn's Vulkan backend only prints a
 * warning, so relp skips the attempt silently and for free.
 */
function vulkanLoaderPresent(): boolean {
  try {
    process.dlopen({ exports: {} }, 'libvulkan.so.1');
    return true;
  } catch (e) {
    // A library that loads but is no Node addon fails later with "did not self-register".
    return !/cannot open shared object file/.test((e as Error).message);
  }
}

async function importOptional<T>(spec: string): Promise<T | undefined> {
  try {
    return (await import(spec)) as T;
  } catch {
    return undefined;
  }
}

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
  /** Messages of GPU errors (validation, out-of-memory, device loss) in order. */
  errors: string[];
  /** How many of `errors` have been thrown already. */
  reported: number;
}

let state: WebgpuState | undefined;
/** The native-global names this module added to globalThis (removed again on release). */
const addedGlobals: string[] = [];

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
  let attempts = dawnAttempts(process.platform, opts.allowSoftware);
  const tried: string[] = [];
  if (process.platform === 'linux' && !vulkanLoaderPresent()) {
    attempts = attempts.filter((a) => a.label !== 'vulkan');
    tried.push('vulkan (libvulkan.so.1 is not installed)');
  }
  if (attempts.length === 0) return { ok: false, reason: `no WebGPU adapter to try: ${tried.join('; ')}` };
  const dawn = await importOptional<DawnModule>('webgpu');
  if (!dawn) return { ok: false, reason: 'the optional package "webgpu" (Dawn for Node) cannot be imported; install it with npm' };
  const tfwg = await importOptional<{ WebGPUBackend: WebGPUBackendClass }>('@tensorflow/tfjs-backend-webgpu');
  if (!tfwg) return { ok: false, reason: 'the optional package "@tensorflow/tfjs-backend-webgpu" cannot be imported; install it with npm' };

  // Before any Dawn call: every event-processing callback Dawn queues must go through the wrapper.
  wrapSetImmediate();
  for (const attempt of attempts) {
    for (const [k, v] of Object.entries(attempt.env ?? {})) process.env[k] ??= v;
    let gpu: GpuLike | undefined;
    let adapter: GpuAdapterLike | null = null;
    try {
      gpu = dawn.create(attempt.flags);
      adapter = await gpu.requestAdapter({ featureLevel: attempt.featureLevel, powerPreference: 'high-performance' });
    } catch (e) {
      tried.push(`${attempt.label} (${(e as Error).message})`);
      continue;
    }
    if (!adapter) {
      tried.push(`${attempt.label} (no adapter)`);
      continue;
    }
    const info = adapter.info;
    const software = isSoftwareAdapter(info);
    if (software && !opts.allowSoftware) {
      tried.push(`${attempt.label} (software adapter ${describeAdapter(info)})`);
      continue;
    }
    let device: GpuDeviceLike | undefined;
    let deviceError = '';
    // Every limit at the adapter's best first; if a driver refuses one, the few tfjs itself asks for.
    for (const requiredLimits of [bestLimits(adapter.limits), pickLimits(adapter.limits, TFJS_LIMITS)]) {
      try {
        device = await adapter.requestDevice({ requiredLimits });
        break;
      } catch (e) {
        deviceError = (e as Error).message;
      }
    }
    if (!device) {
      tried.push(`${attempt.label} (requestDevice failed: ${deviceError})`);
      continue;
    }
    installGlobals(dawn.globals);
    installReadSync(tfwg.WebGPUBackend);
    installBindingGuard(tfwg.WebGPUBackend);
    installBlockDisposal(tfwg.WebGPUBackend);
    installKernelFixes();
    const summary: WebgpuAdapter = { route: attempt.label, description: describeAdapter(info), software };
    state = { adapter: summary, device, gpu, errors: [], reported: 0 };
    watchErrors(device);
    maxStorageBuffers = device.limits.maxStorageBuffersPerShaderStage;
    maxBindingBytes = bindingLimit(device.limits.maxStorageBufferBindingSize);
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    const Backend = tfwg.WebGPUBackend;
    tf.registerBackend('webgpu', () => withNavigatorGpu(gpu, () => new Backend(device, info)), 3);
    process.once('beforeExit', releaseWebgpu);
    return { ok: true, adapter: summary };
  }
  restoreSetImmediate();
  return {
    ok: false,
    reason:
      `no WebGPU adapter: tried ${tried.join('; ')}` +
      (process.platform === 'linux' && opts.allowSoftware ? '. For the CPU fallback install Mesa: apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri libgbm1' : ''),
  };
}

/**
 * Make GPU errors loud. Dawn reports a failed kernel (e.g. a shader over a device limit) only as an
 * "uncaptured error" printed on stdout, and the kernel's output is silently garbage. relp prints
 * the error on stderr instead and throws it at the next read of a tensor.
 */
function watchErrors(device: GpuDeviceLike): void {
  const record = (msg: string) => {
    if (state?.device !== device) return;
    state.errors.push(msg);
    process.stderr.write(`relp: WebGPU error: ${msg}\n`);
  };
  device.addEventListener('uncapturederror', (e) => {
    e.preventDefault(); // else dawn.node prints it on stdout, which must stay machine-readable
    record(e.error.message.trim());
  });
  device.lost.then((l) => {
    if (l.reason !== 'destroyed') record(`the device was lost: ${l.message}`);
  });
}

/** Throw the GPU errors not reported yet (called after every read from the GPU). */
function throwNewErrors(): void {
  if (!state || state.reported === state.errors.length) return;
  const fresh = state.errors.slice(state.reported);
  state.reported = state.errors.length;
  throw new Error(`webgpu: ${fresh.length} GPU error(s) since the last read, results are invalid. First: ${fresh[0]}`);
}

/** GPU errors seen since the backend was opened (empty when all kernels ran). */
export function webgpuErrors(): string[] {
  return state ? [...state.errors] : [];
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
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu'); // disposes the backend's buffers
  device.destroy();
  restoreSetImmediate();
  for (const k of addedGlobals.splice(0)) delete (globalThis as Record<string, unknown>)[k];
}

/** The limits tfjs-backend-webgpu's own factory raises to the adapter's values, plus the storage-buffer count. */
const TFJS_LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBuffersPerShaderStage',
];

function pickLimits(limits: object, names: string[]): Record<string, number> {
  const all = bestLimits(limits);
  return Object.fromEntries(names.filter((n) => n in all).map((n) => [n, all[n]]));
}

/** Every limit at the adapter's best value: tfjs binds many buffers, and compatibility-mode defaults are low. */
function bestLimits(limits: object): Record<string, number> {
  const out: Record<string, number> = {};
  // GPUSupportedLimits exposes its values as prototype getters.
  for (let p: object | null = Object.getPrototypeOf(limits); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) {
      const v = (limits as Record<string, unknown>)[k];
      if (typeof v === 'number') out[k] = v;
    }
  }
  return out;
}

/** tfjs-backend-webgpu uses the WebGPU constants (GPUBufferUsage, GPUMapMode, GPUBuffer, ...) as globals. */
function installGlobals(globals: Record<string, unknown>): void {
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals)) {
    if (!(k in g)) {
      g[k] = v;
      addedGlobals.push(k);
    }
  }
}

/**
 * The WebGPUBackend constructor refuses to run unless `navigator.gpu` exists. Keeping the Dawn
 * instance on a global would keep Node alive, so it is there only while the backend is built.
 */
function withNavigatorGpu<T>(gpu: GpuLike | undefined, f: () => T): T {
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

// ---------------------------------------------------------------------------------------------
// Synchronous reads.
//
// dawn.node resolves `mapAsync` from `wgpuInstanceProcessEvents`, which it runs in a callback it
// queues with the global `setImmediate` (looked up at each call) while async work is pending. A
// synchronous read cannot wait for the event loop, so from the first Dawn call on relp wraps
// `setImmediate`: each native callback Dawn queues is remembered and may be run early, once (the
// queued copy then does nothing). The read copies the tensor's buffer to a mappable one, calls
// `mapAsync`, and runs the pending Dawn callbacks until the map completes. Results are identical
// to the async `data()` path.
// ---------------------------------------------------------------------------------------------

let realSetImmediate: typeof setImmediate | undefined;
/** Dawn callbacks queued and not run yet, oldest first. */
const pendingPumps = new Set<() => void>();

function isNativeFunction(f: unknown): f is () => void {
  return typeof f === 'function' && Function.prototype.toString.call(f).includes('[native code]');
}

function wrapSetImmediate(): void {
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

function restoreSetImmediate(): void {
  if (!realSetImmediate) return;
  globalThis.setImmediate = realSetImmediate;
  realSetImmediate = undefined;
  // A queued wrapper still runs its Dawn callback when the loop gets to it.
  pendingPumps.clear();
}

let readSyncInstalled = false;

/** Replace `WebGPUBackend.prototype.readSync` (OffscreenCanvas-based, browser only) for Node. */
function installReadSync(Backend: WebGPUBackendClass): void {
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

// ---------------------------------------------------------------------------------------------
// Kernel workarounds. Each one is covered by a test in test/backend/webgpu-parity.test.ts.
// ---------------------------------------------------------------------------------------------

/** Bytes one storage-buffer binding may span (the device's limit; 128 MiB on llvmpipe). */
let maxBindingBytes = Number.POSITIVE_INFINITY;
let bindingGuardInstalled = false;

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
            `over this adapter's limit of ${mb(maxBindingBytes)} (${state?.adapter.description ?? 'unknown adapter'}). ` +
            'Use smaller batches, or RELP_BACKEND=wasm on this machine (a GPU adapter allows larger bindings).',
        );
      }
    }
    return run.call(this, program, inputs, ...rest);
  };
}

/** Storage buffers one shader may bind (the device's limit; 16 on llvmpipe, 8 by WebGPU default). */
let maxStorageBuffers = 8;
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
