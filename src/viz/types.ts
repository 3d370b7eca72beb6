/**
 * The on-disk formats the viewer reads, as TypeScript types.
 *
 * A run directory is `RUNS_DIR/<run-id>/` holding `run.json` (patching scores), and optionally
 * `circuit.json` (an attribution-graph-style edge graph) and `faithfulness.json`. The producers
 * live elsewhere (patching, circuits); these types are the contract the viewer validates against.
 */

/** Named axes of a score tensor. `pos` is indexed by token position, with labels from `RunFile.labels`. */
export type ScoreAxis = 'layer' | 'head' | 'pos';

/** The axis layouts the viewer knows how to draw. */
export const SCORE_LAYOUTS: readonly (readonly ScoreAxis[])[] = [
  ['layer', 'pos'], // resid_pre, resid_mid, resid_post, attn_out, mlp_out
  ['layer', 'head'], // z, q, k, v, pattern
  ['layer', 'head', 'pos'], // z_pos
];

/** Nested arrays of numbers; `null` marks a cell the producer could not compute (drawn as a gap). */
export type NestedNumbers = (number | null)[] | NestedNumbers[];

/**
 * One component's scores for one method.
 * `values` is a nested array of `shape` (row-major), e.g. [L][T] for axes ["layer","pos"].
 */
export interface ScoreTensor {
  axes: ScoreAxis[];
  shape: number[];
  values: NestedNumbers;
}

/** One clean/corrupt prompt pair of the dataset. */
export interface PromptPair {
  clean: string;
  corrupt: string;
  answer: string;
  wrong: string;
  clean_ids?: number[];
  corrupt_ids?: number[];
  answer_id?: number;
  wrong_id?: number;
}

/** `RUNS_DIR/<id>/run.json`, version 1. */
export interface RunFile {
  version: 1;
  model: { path?: string; config?: Record<string, unknown>; sha256?: string };
  dataset: { kind?: string; seed?: number; pairs: PromptPair[] };
  metric?: { name?: string; clean?: number; corrupt?: number };
  /** method (`activation`, `atp`, `atp*`, `relp`, ...) -> component (`resid_pre`, `z`, ...) -> tensor. */
  scores: Record<string, Record<string, ScoreTensor>>;
  /** Token strings for the `pos` axis, [T]. */
  labels: string[];
  rules?: string;
  /** method -> seconds. */
  timings?: Record<string, number>;
  /** ISO date. */
  created?: string;
}

/** Node kinds of the circuit graph. */
export type CircuitFeatureType = 'embedding' | 'attention' | 'mlp' | 'logits';

/** A node of `circuit.json`: `input`, `a{l}.h{h}`, `m{l}`, `logits` (position-resolved graphs may suffix ids). */
export interface CircuitNode {
  node_id: string;
  layer: number;
  /** Token position, or null for a node that sums over positions. */
  ctx_idx: number | null;
  feature_type: CircuitFeatureType;
  head?: number;
  influence?: number;
  /** method -> node score. */
  scores?: Record<string, number | null>;
}

/** A directed edge source -> target; `target_input` names which input of an attention head it feeds. */
export interface CircuitLink {
  source: string;
  target: string;
  target_input?: 'q' | 'k' | 'v' | null;
  weight: number;
  /** method -> edge score (null when that method did not score this edge). */
  scores?: Record<string, number | null>;
}

/** `RUNS_DIR/<id>/circuit.json`, close to the attribution-graph JSON of circuit-tracer / Neuronpedia. */
export interface CircuitFile {
  metadata: { model?: string; task?: string; method?: string; methods?: string[]; [k: string]: unknown };
  nodes: CircuitNode[];
  links: CircuitLink[];
  qParams?: { pinnedIds?: string[]; pruningThreshold?: number | null; [k: string]: unknown };
}

/** One point of a faithfulness curve. */
export interface FaithfulnessPoint {
  edges: number;
  fraction_edges: number;
  recovered: number;
}

/** `RUNS_DIR/<id>/faithfulness.json`: one of these, or an array of them (one per method). */
export interface FaithfulnessCurve {
  method: string;
  ablation?: string;
  curve: FaithfulnessPoint[];
  full?: number;
  empty?: number;
  auc?: number;
}

/** One row of `/api/runs`. */
export interface RunSummary {
  id: string;
  model: string | null;
  task: string | null;
  methods: string[];
  /** ISO date: `created` from run.json, else the newest file's mtime. */
  date: string | null;
  /** Total bytes of the run's files. */
  size: number;
  hasRun: boolean;
  hasCircuit: boolean;
  hasFaithfulness: boolean;
  /** Set when a file of the run could not be read or validated. */
  error: string | null;
}

/** Correlation of one method with the reference method (activation patching) on one component. */
export interface CorrelationCell {
  pearson: number | null;
  spearman: number | null;
  /** Number of cells with finite values in both methods. */
  n: number;
}

/** `/api/runs/:id/correlations`: rows = components, columns = methods (like Table 1 of the RelP paper). */
export interface CorrelationTable {
  reference: string;
  methods: string[];
  rows: { component: string; cells: Record<string, CorrelationCell> }[];
}
