/**
 * Random HF checkpoints (test/helpers/hf-checkpoint.ts) loaded as models, for the circuit tests
 * on non-GPT-2 architectures. Folders are removed by `cleanupHFModels`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
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
