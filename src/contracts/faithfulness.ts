/**
 * The `faithfulness.json` contract: one faithfulness curve per circuit method. Version 1 is an
 * object `{version, written_by, provenance, curves}`; a file without a version (relp 0.1.0: one
 * curve, or an array of curves) is read with unknown provenance.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { ContractError } from './errors.ts';
import { readJson, unknownVersion, writeJsonAtomic } from './file-io.ts';
import { ProvenanceSchema, writtenBy, type Provenance } from './provenance.ts';
import { parseWith } from './zod-issues.ts';

/** Current faithfulness-file version. */
export const FAITHFULNESS_VERSION = 1;

/** One point of a curve: a circuit of `edges` edges recovers `recovered` of the metric. */
export const CurvePointSchema = z.object({ edges: z.number(), fraction_edges: z.number().optional(), recovered: z.number() });
/**
 * One point of a faithfulness curve.
 *
 * @interface
 */
export type CurvePoint = z.infer<typeof CurvePointSchema>;

/**
 * MIB's scores of a curve (Mueller et al. 2025): faithfulness at the top 0.1%, 0.2%, 0.5%, 1%, 2%,
 * 5%, 10%, 20%, 50% and 100% of the edges (max(1, floor(p · nEdges)) edges each), CPR = area under
 * f over those fractions (trapezoid rule, divided by 0.999 so that f ≡ 1 gives 1; higher is better)
 * and CMD = area under |1 − f| (same normalisation; lower is better). src/circuits/faithfulness.ts
 * computes them. An optional field of version 1: files written before it existed stay readable.
 */
export const MibCurveScoresSchema = z.object({
  fractions: z.array(z.number()),
  edges: z.array(z.number().int().nonnegative()),
  recovered: z.array(z.number()),
  cpr: z.number(),
  cmd: z.number(),
});
/**
 * MIB's scores of a curve.
 *
 * @interface
 */
export type MibCurveScores = z.infer<typeof MibCurveScoresSchema>;

/** One method's curve. */
export const FaithfulnessCurveSchema = z.looseObject({
  method: z.string(),
  /** What ablated edges carry: corrupt, mean or zero. */
  ablation: z.string().optional(),
  metric: z.string().optional(),
  selection: z.string().optional(),
  curve: z.array(CurvePointSchema),
  /** Measured (un-normalised) metric of the full model and of the empty circuit. */
  full: z.number().nullable().optional(),
  empty: z.number().nullable().optional(),
  /** Area under recovered(fraction_edges), trapezoid rule over [0, 1]. */
  auc: z.number().nullable().optional(),
  /** Smallest measured circuit reaching 80% recovered, or null. */
  edges_for_80: z.number().nullable().optional(),
  /** MIB's CPR and CMD with the faithfulness at MIB's edge fractions (absent in older files). */
  mib: MibCurveScoresSchema.nullable().optional(),
});
/**
 * A faithfulness curve.
 *
 * @interface
 */
export type FaithfulnessCurve = z.infer<typeof FaithfulnessCurveSchema>;

/** Schema of `faithfulness.json` version 1. */
export const FaithfulnessFileSchema = z.object({
  version: z.literal(FAITHFULNESS_VERSION),
  written_by: z.string(),
  provenance: ProvenanceSchema,
  curves: z.array(FaithfulnessCurveSchema),
});

/** Schema of a `faithfulness.json` without a version: one curve or an array of curves. */
export const FaithfulnessFileLegacySchema = z.union([FaithfulnessCurveSchema, z.array(FaithfulnessCurveSchema)]);

/** A faithfulness file as read; `provenance` is null for a legacy file. */
export interface FaithfulnessFile {
  version: number | null;
  written_by: string | null;
  provenance: Provenance | null;
  curves: FaithfulnessCurve[];
}

/**
 * Check a parsed `faithfulness.json`.
 * @throws ContractError naming the file, the JSON path and the problem.
 */
export function parseFaithfulnessFile(raw: unknown, file = 'faithfulness.json'): FaithfulnessFile {
  if (Array.isArray(raw)) return { version: null, written_by: null, provenance: null, curves: parseWith(z.array(FaithfulnessCurveSchema), raw, file) };
  if (typeof raw !== 'object' || raw === null) throw new ContractError(file, null, `is ${raw === null ? 'null' : `a ${typeof raw}`}, expected a faithfulness object`);
  const obj = raw as Record<string, unknown>;
  if (obj.version === undefined) return { version: null, written_by: null, provenance: null, curves: [parseWith(FaithfulnessCurveSchema, raw, file)] };
  if (obj.version === FAITHFULNESS_VERSION) return parseWith(FaithfulnessFileSchema, raw, file);
  throw unknownVersion(file, 'faithfulness file', obj, [FAITHFULNESS_VERSION]);
}

/** Read and check `DIR/faithfulness.json` (or a path to the file). @throws ContractError */
export function readFaithfulnessFile(dirOrFile: string): FaithfulnessFile {
  const path = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'faithfulness.json');
  return parseFaithfulnessFile(readJson(path), path);
}

/** Write `DIR/faithfulness.json` atomically after checking it; returns the path. */
export function writeFaithfulnessFile(dir: string, content: { provenance: Provenance; curves: FaithfulnessCurve[] }): string {
  const path = join(dir, 'faithfulness.json');
  const file = { version: FAITHFULNESS_VERSION, written_by: writtenBy(), provenance: content.provenance, curves: content.curves };
  parseWith(FaithfulnessFileSchema, JSON.parse(JSON.stringify(file)), `${path} (before writing)`);
  writeJsonAtomic(path, file, 1);
  return path;
}
