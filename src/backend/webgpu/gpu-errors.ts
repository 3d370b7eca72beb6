/**
 * Loud GPU errors. Dawn reports a failed kernel (e.g. a shader over a device limit) only as an
 * "uncaptured error" printed on stdout, and the kernel's output is silently garbage. relp prints
 * the error on stderr instead and throws it at the next read of a tensor.
 */
import type { GpuDeviceLike } from './gpu-types.ts';

interface ErrorLog {
  /** The device being watched; events from an earlier device are ignored. */
  device: GpuDeviceLike;
  /** Messages of GPU errors (validation, out-of-memory, device loss) in order. */
  errors: string[];
  /** How many of `errors` have been thrown already. */
  reported: number;
}

let log: ErrorLog | undefined;

/** Record the errors of `device` from now on (replacing any earlier device). */
export function watchErrors(device: GpuDeviceLike): void {
  log = { device, errors: [], reported: 0 };
  const record = (msg: string) => {
    if (log?.device !== device) return;
    log.errors.push(msg);
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

/** Stop recording and forget the errors (the backend is being released). */
export function stopWatchingErrors(): void {
  log = undefined;
}

/** Throw the GPU errors not reported yet (called after every read from the GPU). */
export function throwNewErrors(): void {
  if (!log || log.reported === log.errors.length) return;
  const fresh = log.errors.slice(log.reported);
  log.reported = log.errors.length;
  throw new Error(`webgpu: ${fresh.length} GPU error(s) since the last read, results are invalid. First: ${fresh[0]}`);
}

/** GPU errors seen since the backend was opened (empty when all kernels ran). */
export function webgpuErrors(): string[] {
  return log ? [...log.errors] : [];
}
