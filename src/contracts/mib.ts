/**
 * The MIB circuit file contract (Mueller et al. 2025, circuit-localization track; the layout of
 * EAP-IG's `Graph.to_json`): `{cfg, nodes, edges}` with
 * - `cfg`: `{n_layers, n_heads, parallel_attn_mlp, d_model}` (other keys are allowed and ignored);
 * - `nodes`: node name (`input`, `a{l}.h{h}`, `m{l}`, `logits`) → `{in_graph, score?}`;
 * - `edges`: edge name (`input->a0.h0<q>`, `a0.h0->m0`, `m11->logits`) → `{score, in_graph}`.
 * The file has no version, writer or provenance: it is MIB's format, read by MIB's own tools.
 * Names are checked against a model's graph by src/circuits/mib.ts, not here.
 */
import { z } from 'zod';
import { ContractError } from './errors.ts';
import { readJson, writeJsonAtomic } from './file-io.ts';
import { parseWith } from './zod-issues.ts';

/** The `cfg` object: the shape of the model the circuit is on. */
export const MibCfgSchema = z.looseObject({
  n_layers: z.number().int().positive(),
  n_heads: z.number().int().positive(),
  parallel_attn_mlp: z.boolean(),
  d_model: z.number().int().positive(),
});
/**
 * A MIB `cfg`.
 *
 * @interface
 */
export type MibCfg = z.infer<typeof MibCfgSchema>;

/** A node: in the circuit or not; node-level methods add a score, neuron-level ones `neurons`. */
export const MibNodeSchema = z.looseObject({ in_graph: z.boolean(), score: z.number().nullable().optional() });

/** An edge: its method score and whether it is in the circuit. */
export const MibEdgeSchema = z.looseObject({ score: z.number(), in_graph: z.boolean() });

/** Schema of a MIB circuit file. */
export const MibFileSchema = z.object({
  cfg: MibCfgSchema,
  nodes: z.record(z.string(), MibNodeSchema),
  edges: z.record(z.string(), MibEdgeSchema),
});
/**
 * A MIB circuit file.
 *
 * @interface
 */
export type MibFile = z.infer<typeof MibFileSchema>;

/**
 * Check a parsed MIB circuit file.
 * @throws ContractError naming the file, the JSON path and the problem.
 */
export function parseMibFile(raw: unknown, file = 'MIB circuit file'): MibFile {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ContractError(file, null, `is ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : `a ${typeof raw}`}, expected a MIB circuit object {cfg, nodes, edges}`);
  return parseWith(MibFileSchema, raw, file);
}

/** Read and check a MIB circuit file. @throws ContractError (missing file, bad JSON, bad fields) */
export function readMibFile(path: string): MibFile {
  return parseMibFile(readJson(path), path);
}

/** Write a MIB circuit file atomically (compact JSON, as EAP-IG writes it) after checking it; returns the path. */
export function writeMibFile(path: string, content: MibFile): string {
  parseWith(MibFileSchema, content, `${path} (before writing)`);
  writeJsonAtomic(path, content);
  return path;
}
