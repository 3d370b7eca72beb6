/**
 * The `run.json` contract: patching scores of one run folder, shared by `relp patch`/`demo`,
 * `relp compare`, the viewer and the notebooks. Version 2 adds provenance; version 1 files
 * (written before it) are read and upgraded, with the model hash unknown.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { ContractError } from './errors.ts';
import { readJson, unknownVersion, writeJsonAtomic } from './file-io.ts';
import { datasetHash, ProvenanceSchema, writtenBy, type Provenance } from './provenance.ts';
import { ScoreTensorSchema } from './score-tensor.ts';
import { parseWith } from './zod-issues.ts';

/** Current run-file version (what {@link writeRunFile} writes). */
export const RUN_VERSION = 2;
/** Versions {@link readRunFile} reads. */
export const RUN_VERSIONS_READ = [1, 2] as const;

/** One recorded prompt pair, with ids. */
export const RunPairSchema = z.object({
  clean: z.string(),
  corrupt: z.string(),
  answer: z.string(),
  wrong: z.string(),
  clean_ids: z.array(z.number().int().nonnegative()),
  corrupt_ids: z.array(z.number().int().nonnegative()),
  answer_id: z.number().int().nonnegative(),
  wrong_id: z.number().int().nonnegative(),
});
/**
 * One recorded prompt pair.
 *
 * @interface
 */
export type RunPair = z.infer<typeof RunPairSchema>;

/** method (`activation`, `atp`, `atp*`, `relp`, ...) → component (`resid_pre`, `z`, ...) → tensor. */
const ScoresSchema = z.record(z.string(), z.record(z.string(), ScoreTensorSchema));

/** Schema of `run.json` version 2. */
export const RunFileSchema = z
  .object({
    version: z.literal(RUN_VERSION),
    /** `relp <package version>` that wrote the file. */
    written_by: z.string(),
    /** ISO date. */
    created: z.string(),
    provenance: ProvenanceSchema,
    model: z.object({ path: z.string(), config: z.record(z.string(), z.unknown()), sha256: z.string() }),
    dataset: z.object({
      kind: z.string(),
      seed: z.number().int().optional(),
      corruption: z.string().optional(),
      source: z.string().optional(),
      pairs: z.array(RunPairSchema),
    }),
    /** Batch-mean metric of the clean and corrupt runs (null: not measured). */
    metric: z.object({ name: z.string(), clean: z.number().nullable(), corrupt: z.number().nullable(), direction: z.string() }),
    scores: ScoresSchema,
    /** Token strings of the first clean prompt, for the `pos` axis [T]. */
    labels: z.array(z.string()),
    /** LRP rule preset of the `relp` scores. */
    rules: z.string().nullable().optional(),
    /** method → seconds. */
    timings: z.record(z.string(), z.number()),
    backend: z.string().optional(),
  })
  .superRefine((run, ctx) => checkPositions(run.scores, run.labels.length, ctx));

/**
 * The content of `run.json` (version 2).
 *
 * @interface
 */
export type RunFile = z.infer<typeof RunFileSchema>;

/**
 * Schema of `run.json` version 1, as relp 0.1.0 wrote it (no provenance, no writer). Lenient
 * where the viewer always was, so every file it showed is still shown.
 */
export const RunFileV1Schema = z
  .object({
    version: z.literal(1),
    created: z.string().optional(),
    model: z.object({ path: z.string().optional(), config: z.record(z.string(), z.unknown()).optional(), sha256: z.string().optional() }),
    dataset: z.object({
      kind: z.string().optional(),
      seed: z.number().int().optional(),
      corruption: z.string().optional(),
      source: z.string().optional(),
      pairs: z.array(RunPairSchema.partial({ clean_ids: true, corrupt_ids: true, answer_id: true, wrong_id: true })).default([]),
    }),
    metric: z.object({ name: z.string().optional(), clean: z.number().nullable().optional(), corrupt: z.number().nullable().optional(), direction: z.string().optional() }).optional(),
    scores: ScoresSchema,
    labels: z.array(z.string()),
    rules: z.string().nullable().optional(),
    timings: z.record(z.string(), z.number().nullable()).optional(),
    backend: z.string().optional(),
  })
  .superRefine((run, ctx) => checkPositions(run.scores, run.labels.length, ctx));

/** Every `pos` axis must have one entry per label, and a component one shape across methods. */
function checkPositions(scores: z.infer<typeof ScoresSchema>, nPos: number, ctx: z.RefinementCtx): void {
  const first = new Map<string, { method: string; axes: string; shape: string }>();
  for (const [method, comps] of Object.entries(scores)) {
    for (const [comp, t] of Object.entries(comps)) {
      const seen = first.get(comp);
      const axes = t.axes.join(', ');
      const shape = t.shape.join(', ');
      if (!seen) first.set(comp, { method, axes, shape });
      else if (seen.axes !== axes || seen.shape !== shape) {
        ctx.addIssue({ code: 'custom', path: ['scores', method, comp, 'shape'], message: `is [${shape}] (${axes}) but ${seen.method}'s ${comp} is [${seen.shape}] (${seen.axes}): one component has one shape in a run` });
        return;
      }
      const p = (t.axes as readonly string[]).indexOf('pos');
      if (p >= 0 && t.shape[p] !== nPos) {
        ctx.addIssue({ code: 'custom', path: ['scores', method, comp, 'shape'], message: `has ${t.shape[p]} positions but labels has ${nPos} tokens` });
      }
    }
  }
}

/** Upgrade a version-1 file: provenance from its dataset, model hash unknown. */
function upgradeV1(v1: z.infer<typeof RunFileV1Schema>): RunFile {
  const pairs = v1.dataset.pairs;
  const provenance: Provenance = {
    task: v1.dataset.kind === 'jsonl' ? (v1.dataset.source ?? 'jsonl') : (v1.dataset.kind ?? 'unknown'),
    seed: v1.dataset.kind === 'jsonl' ? null : (v1.dataset.seed ?? null),
    dataset_sha256: datasetHash(pairs),
    model_sha256: null,
  };
  return {
    version: RUN_VERSION,
    written_by: 'relp (run-file version 1)',
    created: v1.created ?? '',
    provenance,
    model: { path: v1.model.path ?? '', config: v1.model.config ?? {}, sha256: v1.model.sha256 ?? '' },
    dataset: {
      kind: v1.dataset.kind ?? 'unknown',
      ...(v1.dataset.seed !== undefined ? { seed: v1.dataset.seed } : {}),
      ...(v1.dataset.corruption !== undefined ? { corruption: v1.dataset.corruption } : {}),
      ...(v1.dataset.source !== undefined ? { source: v1.dataset.source } : {}),
      pairs: pairs.map((p) => ({ ...p, clean_ids: p.clean_ids ?? [], corrupt_ids: p.corrupt_ids ?? [], answer_id: p.answer_id ?? 0, wrong_id: p.wrong_id ?? 0 })),
    },
    metric: { name: v1.metric?.name ?? 'unknown', clean: v1.metric?.clean ?? null, corrupt: v1.metric?.corrupt ?? null, direction: v1.metric?.direction ?? 'denoising' },
    scores: v1.scores,
    labels: v1.labels,
    rules: v1.rules ?? null,
    timings: Object.fromEntries(Object.entries(v1.timings ?? {}).filter((e): e is [string, number] => e[1] !== null)),
    ...(v1.backend !== undefined ? { backend: v1.backend } : {}),
  };
}

/**
 * Check a parsed `run.json` (version 1 or 2) and return it as the current version.
 * @param file label used in messages, e.g. `runs/ioi-16/run.json`.
 * @throws ContractError naming the file, the JSON path and the problem; an unknown version is
 *   refused naming the version (and the relp that wrote it).
 */
export function parseRunFile(raw: unknown, file = 'run.json'): RunFile {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ContractError(file, null, `is ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : `a ${typeof raw}`}, expected a run-file object`);
  const obj = raw as Record<string, unknown>;
  if (obj.version === undefined) throw new ContractError(file, 'version', 'is missing: not a relp run file');
  if (obj.version === 1) return upgradeV1(parseWith(RunFileV1Schema, raw, file));
  if (obj.version === RUN_VERSION) return parseWith(RunFileSchema, raw, file);
  throw unknownVersion(file, 'run file', obj, RUN_VERSIONS_READ);
}

/** Path of the run file of a folder (or the path itself when it names a .json file). */
export function runFilePath(dirOrFile: string): string {
  return dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'run.json');
}

/** Read and check `DIR/run.json` (or a path to the file). @throws ContractError */
export function readRunFile(dirOrFile: string): RunFile {
  const path = runFilePath(dirOrFile);
  return parseRunFile(readJson(path), path);
}

/**
 * The fields a producer supplies; version, writer and date are filled in when missing.
 *
 * @interface
 */
export type RunFileContent = Omit<RunFile, 'version' | 'written_by' | 'created'> & Partial<Pick<RunFile, 'version' | 'written_by' | 'created'>>;

/** Stamp a run file's content with the current version, this relp as writer, and a date. */
export function runFileOf(content: RunFileContent): RunFile {
  return { ...content, version: RUN_VERSION, written_by: writtenBy(), created: content.created ?? new Date().toISOString() };
}

/** The run-file form of prompt pairs (snake_case ids). */
export function runPairs(pairs: readonly { clean: string; corrupt: string; answer: string; wrong: string; cleanIds: number[]; corruptIds: number[]; answerId: number; wrongId: number }[]): RunPair[] {
  return pairs.map((p) => ({
    clean: p.clean,
    corrupt: p.corrupt,
    answer: p.answer,
    wrong: p.wrong,
    clean_ids: p.cleanIds,
    corrupt_ids: p.corruptIds,
    answer_id: p.answerId,
    wrong_id: p.wrongId,
  }));
}

/**
 * Write `DIR/run.json` atomically (the one writer of run files). The content is checked against
 * the schema first, so relp never writes a file it would refuse to read.
 * @returns the path written.
 */
export function writeRunFile(dir: string, content: RunFileContent): string {
  const path = join(dir, 'run.json');
  const run = runFileOf(content);
  // JSON turns NaN into null; check what will be read back.
  parseWith(RunFileSchema, JSON.parse(JSON.stringify(run)), `${path} (before writing)`);
  writeJsonAtomic(path, run);
  return path;
}
