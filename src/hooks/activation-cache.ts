/**
 * A cache of activations keyed by hook name, as returned by `runWithCache`.
 */
import type * as tf from '@tensorflow/tfjs';

/** Activations keyed by hook name. The caller owns the tensors: call {@link disposeCache}. */
export type ActivationCache = Record<string, tf.Tensor>;

/** Dispose every tensor of a cache (or several). */
export function disposeCache(...caches: ActivationCache[]): void {
  for (const c of caches) for (const t of Object.values(c)) t.dispose();
}

/** Get an activation or throw an error naming the missing hook and listing what is cached. */
export function getActivation(cache: ActivationCache, name: string): tf.Tensor {
  const t = cache[name];
  if (!t) {
    const have = Object.keys(cache);
    throw new Error(`activation "${name}" is not in the cache (cached: ${have.length ? have.join(', ') : 'nothing'})`);
  }
  return t;
}
