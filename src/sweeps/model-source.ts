/**
 * Where a shard's model comes from: the embedded model, a folder, or a Hugging Face repo id that
 * the worker downloads (once, into its cache). A worker may override the location (the same
 * weights live at another path on its machine); the weight hash still decides whether its
 * results count.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { downloadModel } from '../io/download.ts';
import { loadModel, EMBEDDED_MODEL_DIR, type LoadedModel } from '../hooks/load-model.ts';

/** The plan's reference for a `--model` argument: `embedded`, an absolute folder, or an HF repo id. */
export function modelRef(arg: string | undefined): string {
  if (arg === undefined) return 'embedded';
  if (existsSync(arg)) return resolve(arg);
  if (/^[\w.-]+\/[\w.-]+$/.test(arg) && !isAbsolute(arg)) return arg;
  throw new Error(`model folder not found: ${resolve(arg)}`);
}

/** The folder to load for a reference (downloading an HF repo id when it is not a folder here). */
export async function modelDir(ref: string): Promise<string> {
  if (ref === 'embedded') return EMBEDDED_MODEL_DIR;
  if (existsSync(ref)) return ref;
  if (isAbsolute(ref)) throw new Error(`model folder not found on this machine: ${ref} (start the worker with --model DIR)`);
  return (await downloadModel(ref)).dir;
}

/** Load the model of a reference. */
export async function loadModelRef(ref: string): Promise<LoadedModel> {
  return loadModel(await modelDir(ref));
}
