/**
 * `circuit.json` in the attribution-graph style (circuit-tracer / Neuronpedia), with per-method
 * scores on nodes and links, and `faithfulness.json` (one curve per method).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CircuitGraph, NodeKind } from './graph.ts';
import type { FaithfulnessCurve } from './faithfulness.ts';

/** A node of `circuit.json`. */
export interface CircuitJsonNode {
  node_id: string;
  layer: number;
  /** Null: scores are summed over positions. */
  ctx_idx: number | null;
  feature_type: NodeKind;
  head?: number;
  /** Σ |score| of the primary method over the node's circuit edges. */
  influence: number;
  /** Per method: Σ |score| over all the node's edges (in and out). */
  scores: Record<string, number>;
}

/** A link of `circuit.json`. */
export interface CircuitJsonLink {
  source: string;
  target: string;
  target_input: 'q' | 'k' | 'v' | null;
  /** Score of the primary method. */
  weight: number;
  scores: Record<string, number>;
}

/** The whole `circuit.json`. */
export interface CircuitJson {
  metadata: { model: string; task: string; method: string; methods: string[]; [k: string]: unknown };
  nodes: CircuitJsonNode[];
  links: CircuitJsonLink[];
  qParams: { pinnedIds: string[]; pruningThreshold: number | null };
}

/** Inputs of {@link circuitToJson}. */
export interface CircuitExport {
  graph: CircuitGraph;
  /** Edge mask of the circuit [nEdges]. */
  mask: Uint8Array;
  /** Scores per method [nEdges]; the first key is the primary method unless `method` says otherwise. */
  scores: Record<string, ArrayLike<number>>;
  model: string;
  task: string;
  method?: string;
  /** |score| cut-off used for selection, if any. */
  pruningThreshold?: number | null;
  /** Extra metadata (counts, seconds, ...). */
  extra?: Record<string, unknown>;
}

/** Build the `circuit.json` object of a circuit. */
export function circuitToJson(x: CircuitExport): CircuitJson {
  const { graph, mask } = x;
  const methods = Object.keys(x.scores);
  if (methods.length === 0) throw new Error('circuitToJson: no method scores given');
  const primary = x.method ?? methods[0];
  if (!(primary in x.scores)) throw new Error(`circuitToJson: primary method "${primary}" has no scores (have ${methods.join(', ')})`);
  for (const m of methods) if (x.scores[m].length !== graph.nEdges) throw new Error(`circuitToJson: scores of "${m}" have ${x.scores[m].length} values, expected ${graph.nEdges}`);
  if (mask.length !== graph.nEdges) throw new Error(`circuitToJson: mask has ${mask.length} values, expected ${graph.nEdges}`);
  const N = graph.nodes.length;
  const nodeTotals: Record<string, Float64Array> = {};
  for (const m of methods) nodeTotals[m] = new Float64Array(N);
  const influence = new Float64Array(N);
  const used = new Uint8Array(N);
  used[0] = used[N - 1] = 1;
  const links: CircuitJsonLink[] = [];
  for (const t of graph.targets) {
    for (let u = 0; u < t.nUp; u++) {
      const e = t.edgeOffset + u;
      for (const m of methods) {
        const s = Math.abs(x.scores[m][e]);
        nodeTotals[m][u] += s;
        nodeTotals[m][t.node] += s;
      }
      if (!mask[e]) continue;
      const w = x.scores[primary][e];
      influence[u] += Math.abs(w);
      influence[t.node] += Math.abs(w);
      used[u] = used[t.node] = 1;
      links.push({
        source: graph.nodes[u].id,
        target: graph.nodes[t.node].id,
        target_input: t.input ?? null,
        weight: w,
        scores: Object.fromEntries(methods.map((m) => [m, x.scores[m][e]])),
      });
    }
  }
  const nodes: CircuitJsonNode[] = graph.nodes
    .filter((n) => used[n.index])
    .map((n) => ({
      node_id: n.id,
      layer: n.layer,
      ctx_idx: null,
      feature_type: n.kind,
      ...(n.head !== undefined ? { head: n.head } : {}),
      influence: influence[n.index],
      scores: Object.fromEntries(methods.map((m) => [m, nodeTotals[m][n.index]])),
    }));
  return {
    metadata: { model: x.model, task: x.task, method: primary, methods, n_edges_total: graph.nEdges, n_edges: links.length, ...(x.extra ?? {}) },
    nodes,
    links,
    qParams: { pinnedIds: [], pruningThreshold: x.pruningThreshold ?? null },
  };
}

/** Write `circuit.json` and `faithfulness.json` into `dir` (created if needed); returns the paths. */
export function writeCircuitFiles(dir: string, circuit: CircuitJson, curves: FaithfulnessCurve[]): { circuit: string; faithfulness: string } {
  mkdirSync(dir, { recursive: true });
  const c = join(dir, 'circuit.json');
  const f = join(dir, 'faithfulness.json');
  writeFileSync(c, JSON.stringify(circuit, null, 1) + '\n');
  writeFileSync(f, JSON.stringify(curves.length === 1 ? curves[0] : curves, null, 1) + '\n');
  return { circuit: c, faithfulness: f };
}
