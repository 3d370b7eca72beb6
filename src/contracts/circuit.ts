/**
 * The `circuit.json` contract: an edge circuit in the attribution-graph layout of circuit-tracer /
 * Neuronpedia, with per-method scores on nodes and links. Version 1 adds `version`, the writer and
 * provenance; files without a version (relp 0.1.0, or other tools writing this layout) are read
 * with unknown provenance.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { ContractError } from './errors.ts';
import { readJson, unknownVersion, writeJsonAtomic } from './file-io.ts';
import { ProvenanceSchema, writtenBy } from './provenance.ts';
import { parseWith } from './zod-issues.ts';

/** Current circuit-file version. */
export const CIRCUIT_VERSION = 1;

/** Node kinds of the circuit graph. */
export const CIRCUIT_FEATURE_TYPES = ['embedding', 'attention', 'mlp', 'logits'] as const;
/** One node kind. */
export type CircuitFeatureType = (typeof CIRCUIT_FEATURE_TYPES)[number];

/** method → score (null when that method did not score it). */
const MethodScoreMap = z.record(z.string(), z.number().nullable());

/** A node: `input`, `a{l}.h{h}`, `m{l}`, `logits` (position-resolved graphs may suffix ids). */
export const CircuitNodeSchema = z.object({
  node_id: z.string().min(1),
  layer: z.number().int(),
  /** Token position, or null for a node that sums over positions. */
  ctx_idx: z.number().int().nonnegative().nullable().optional(),
  feature_type: z.enum(CIRCUIT_FEATURE_TYPES),
  head: z.number().int().nonnegative().nullable().optional(),
  /** Σ |score| of the primary method over the node's circuit edges. */
  influence: z.number().nullable().optional(),
  /** Per method: Σ |score| over all the node's edges. */
  scores: MethodScoreMap.optional(),
});
/**
 * A node of `circuit.json`.
 *
 * @interface
 */
export type CircuitNode = z.infer<typeof CircuitNodeSchema>;

/** A directed edge source → target; `target_input` names which input of an attention head it feeds. */
export const CircuitLinkSchema = z.object({
  source: z.string(),
  target: z.string(),
  target_input: z.enum(['q', 'k', 'v']).nullable().optional(),
  /** Score of the primary method. */
  weight: z.number(),
  scores: MethodScoreMap.optional(),
});
/**
 * A link of `circuit.json`.
 *
 * @interface
 */
export type CircuitLink = z.infer<typeof CircuitLinkSchema>;

/** The `metadata` object of circuit.json: free-form keys (circuit-tracer / Neuronpedia style) that relp reads loosely. */
export const MetadataSchema = z.looseObject({
  model: z.string().optional(),
  task: z.string().optional(),
  /** The method that selected the circuit. */
  method: z.string().optional(),
  methods: z.array(z.string()).optional(),
});

const QParamsSchema = z.looseObject({ pinnedIds: z.array(z.string()).optional(), pruningThreshold: z.number().nullable().optional() });

const graphFields = {
  metadata: MetadataSchema,
  nodes: z.array(CircuitNodeSchema),
  links: z.array(CircuitLinkSchema),
  qParams: QParamsSchema.optional(),
};

/** Node ids unique; every link endpoint a node id. */
function checkGraph(c: { nodes: CircuitNode[]; links: CircuitLink[] }, ctx: z.RefinementCtx): void {
  const ids = new Set<string>();
  for (const [k, n] of c.nodes.entries()) {
    if (ids.has(n.node_id)) return void ctx.addIssue({ code: 'custom', path: ['nodes', k, 'node_id'], message: `${JSON.stringify(n.node_id)} is used by an earlier node` });
    ids.add(n.node_id);
  }
  for (const [k, l] of c.links.entries()) {
    for (const end of ['source', 'target'] as const) {
      if (!ids.has(l[end])) return void ctx.addIssue({ code: 'custom', path: ['links', k, end], message: `${JSON.stringify(l[end])} is not a node id` });
    }
  }
}

/** Schema of `circuit.json` version 1. */
export const CircuitFileSchema = z
  .object({
    version: z.literal(CIRCUIT_VERSION),
    written_by: z.string(),
    provenance: ProvenanceSchema,
    ...graphFields,
    metadata: MetadataSchema.extend({ model: z.string(), task: z.string(), method: z.string(), methods: z.array(z.string()) }),
  })
  .superRefine(checkGraph);

/** Schema of a `circuit.json` without a version (relp 0.1.0, or another attribution-graph writer). */
export const CircuitFileLegacySchema = z.object({ ...graphFields, metadata: MetadataSchema.default({}) }).superRefine(checkGraph);

/**
 * A circuit file as read: the current version, with `provenance` null for a legacy file.
 *
 * @interface
 */
export type CircuitFile = Omit<z.infer<typeof CircuitFileSchema>, 'provenance' | 'version' | 'written_by' | 'metadata'> & {
  version: number | null;
  written_by: string | null;
  provenance: z.infer<typeof ProvenanceSchema> | null;
  metadata: z.infer<typeof MetadataSchema>;
};

/**
 * What {@link writeCircuitFile} is given: everything but version and writer.
 *
 * @interface
 */
export type CircuitFileContent = Omit<z.infer<typeof CircuitFileSchema>, 'version' | 'written_by'>;

/**
 * Check a parsed `circuit.json`.
 * @throws ContractError naming the file, the JSON path and the problem.
 */
export function parseCircuitFile(raw: unknown, file = 'circuit.json'): CircuitFile {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ContractError(file, null, `is ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : `a ${typeof raw}`}, expected a circuit object`);
  const obj = raw as Record<string, unknown>;
  if (obj.version === undefined) return { ...parseWith(CircuitFileLegacySchema, raw, file), version: null, written_by: null, provenance: null };
  if (obj.version === CIRCUIT_VERSION) return parseWith(CircuitFileSchema, raw, file);
  throw unknownVersion(file, 'circuit file', obj, [CIRCUIT_VERSION]);
}

/** Read and check `DIR/circuit.json` (or a path to the file). @throws ContractError */
export function readCircuitFile(dirOrFile: string): CircuitFile {
  const path = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'circuit.json');
  return parseCircuitFile(readJson(path), path);
}

/** Write `DIR/circuit.json` atomically after checking it against the schema; returns the path. */
export function writeCircuitFile(dir: string, content: CircuitFileContent): string {
  const path = join(dir, 'circuit.json');
  const file = { version: CIRCUIT_VERSION, written_by: writtenBy(), ...content };
  parseWith(CircuitFileSchema, JSON.parse(JSON.stringify(file)), `${path} (before writing)`);
  writeJsonAtomic(path, file, 1);
  return path;
}
