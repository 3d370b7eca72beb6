/**
 * Model identity for shard checks: sha256 over every weight tensor (names sorted, each hashed as
 * name, shape and float32 bytes), so any change to any weight changes it. Computed once per model.
 */
import { createHash } from 'node:crypto';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';

const cache = new WeakMap<HookedTransformer, string>();

/** sha256 (hex) of all of `model`'s weights; cached per model object. */
export function weightHash(model: HookedTransformer): string {
  const got = cache.get(model);
  if (got) return got;
  const h = createHash('sha256');
  for (const name of [...model.params.keys()].sort()) {
    const t = model.params.get(name)!;
    const data = t.dataSync() as Float32Array;
    h.update(`${name}|${t.dtype}|${t.shape.join('x')}|`);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  const out = h.digest('hex');
  cache.set(model, out);
  return out;
}
