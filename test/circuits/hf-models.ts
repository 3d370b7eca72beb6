/**
 * Random HF checkpoints (test/helpers/hf-checkpoint.ts) loaded as models, for the circuit tests
 * on non-GPT-2 architectures. Folders are removed by `cleanupHFModels`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import type { CanonicalWeights } from '../../src/models/canonical.ts';
import { writeHFCheckpoint, type HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';

const dirs: string[] = [];

/** Write a random checkpoint of `o` to a temp folder and load it; returns the model and its folder. */
export async function hfModel(o: HFCheckpointOptions): Promise<{ model: HookedTransformer; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `relp-circ-${o.modelType}-`));
  dirs.push(dir);
  writeHFCheckpoint(dir, o);
  const ck = await loadCheckpoint(dir);
  return { model: HookedTransformer.fromStateDict(ck.config, ck.stateDict), dir };
}

/** Remove every folder {@link hfModel} wrote. */
export function cleanupHFModels(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The same model with every kv head repeated for the query heads of its group (HF repeat_kv order). */
export function asMha(model: HookedTransformer): HookedTransformer {
  const { nHeads: H, nKvHeads: KV, nLayers: L } = model.cfg;
  const g = H / KV;
  const w: CanonicalWeights = model.canonicalWeights();
  for (let l = 0; l < L; l++) {
    for (const n of ['W_K', 'W_V', 'b_K', 'b_V']) {
      const key = `blocks.${l}.attn.${n}`;
      const t = w.get(key);
      if (!t) continue; // no k / v biases
      const per = t.data.length / KV; // one kv head's block, [d, dh] or [dh]
      const data = new Float32Array(H * per);
      for (let h = 0; h < H; h++) data.set(t.data.subarray(Math.floor(h / g) * per, (Math.floor(h / g) + 1) * per), h * per);
      w.set(key, { shape: [H, ...t.shape.slice(1)], data });
    }
  }
  return HookedTransformer.fromCanonical({ ...model.cfg, nKvHeads: H }, w);
}
