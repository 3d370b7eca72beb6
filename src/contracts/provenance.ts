/**
 * Provenance: what every file relp writes records about how it was made (task, seed, a hash of its
 * prompts and a hash of the model's weights), so two results can be told apart and a run folder
 * never mixes results of different prompts or models.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const SHA256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 hex digest (64 lowercase hex digits)');

/** Schema of the `provenance` object every file carries. */
export const ProvenanceSchema = z.object({
  /** `ioi` for the built-in task, else the dataset file as given. */
  task: z.string().min(1),
  /** Seed of the task generator; null for a dataset file. */
  seed: z.number().int().nullable(),
  /** {@link datasetHash} of the prompt pairs. */
  dataset_sha256: SHA256,
  /** {@link modelHash} of the weights; null only in a file upgraded from a format that did not record it. */
  model_sha256: SHA256.nullable(),
});

/**
 * How a file was made.
 *
 * @interface
 */
export type Provenance = z.infer<typeof ProvenanceSchema>;

/** The prompt text of a pair, the part of a dataset the hash covers. */
export interface PairText {
  clean: string;
  corrupt: string;
  answer: string;
  wrong: string;
}

/**
 * sha256 of the prompt pairs' text, in order (ids are left out: they follow from the text and
 * the tokenizer, which the model hash covers). Equal hashes = the same prompts.
 */
export function datasetHash(pairs: readonly PairText[]): string {
  const canonical = JSON.stringify(pairs.map((p) => [p.clean, p.corrupt, p.answer, p.wrong]));
  return createHash('sha256').update(canonical).digest('hex');
}

/** A model that hashes its own weights (HookedTransformer.weightHash: sha256 of the config and ALL weights). */
export interface HashableModel {
  weightHash(): string;
}

/** The model hash recorded in provenance: the model's own {@link HashableModel.weightHash}, the one definition. */
export function modelHash(model: HashableModel): string {
  return model.weightHash();
}

/** `relp <version>`, the writer recorded in every file. */
export function writtenBy(): string {
  return `relp ${relpVersion()}`;
}

let cachedVersion: string | undefined;
function relpVersion(): string {
  if (cachedVersion === undefined) {
    const pkg = join(dirname(fileURLToPath(import.meta.url)), '../../package.json');
    cachedVersion = String((JSON.parse(readFileSync(pkg, 'utf8')) as { version?: unknown }).version ?? 'unknown');
  }
  return cachedVersion;
}

/** The provenance of a result on `pairs` of `task` (with `seed`) computed by `model`. */
export function makeProvenance(task: string, seed: number | null, pairs: readonly PairText[], model: HashableModel): Provenance {
  return { task, seed, dataset_sha256: datasetHash(pairs), model_sha256: modelHash(model) };
}
