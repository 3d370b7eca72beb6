/**
 * Choosing a WebGPU adapter and device through Dawn: the routes to try per platform (Vulkan, then
 * OpenGL through headless EGL on Linux; Dawn's default backend elsewhere), software-adapter
 * detection, and the device limits to ask for.
 */
import type { AdapterInfoLike, DawnModule, GpuAdapterLike, GpuDeviceLike, GpuLike } from './gpu-types.ts';

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

/**
 * The attempts worth making on this machine: {@link dawnAttempts} less Vulkan on Linux when the
 * Vulkan loader is missing (recorded in `tried`).
 */
export function availableAttempts(allowSoftware: boolean, tried: string[]): DawnAttempt[] {
  let attempts = dawnAttempts(process.platform, allowSoftware);
  if (process.platform === 'linux' && !vulkanLoaderPresent()) {
    attempts = attempts.filter((a) => a.label !== 'vulkan');
    tried.push('vulkan (libvulkan.so.1 is not installed)');
  }
  return attempts;
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

/** A device Dawn gave for one of the attempts. */
export interface DawnDevice {
  /** The attempt's label (`vulkan`, `opengl`, `default`). */
  route: string;
  /** The Dawn instance the adapter came from. */
  gpu: GpuLike;
  /** The adapter's info. */
  info: AdapterInfoLike;
  /** True for llvmpipe and other software adapters. */
  software: boolean;
  device: GpuDeviceLike;
}

/**
 * Make the attempts in order and return the first device Dawn gives, or undefined. Each failed
 * attempt, and each software adapter refused because `allowSoftware` is false, is recorded in `tried`.
 */
export async function requestDawnDevice(dawn: DawnModule, attempts: DawnAttempt[], allowSoftware: boolean, tried: string[]): Promise<DawnDevice | undefined> {
  for (const attempt of attempts) {
    for (const [k, v] of Object.entries(attempt.env ?? {})) process.env[k] ??= v;
    let gpu: GpuLike;
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
    if (software && !allowSoftware) {
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
    return { route: attempt.label, gpu, info, software, device };
  }
  return undefined;
}

/** Why no adapter was found, from what was tried (with the Mesa packages to install on Linux). */
export function noAdapterReason(tried: string[], allowSoftware: boolean): string {
  return (
    `no WebGPU adapter: tried ${tried.join('; ')}` +
    (process.platform === 'linux' && allowSoftware ? '. For the CPU fallback install Mesa: apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri libgbm1' : '')
  );
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
