/**
 * Build `circuit.json` (attribution-graph style, circuit-tracer / Neuronpedia) with per-method
 * scores on nodes and links, and write it with `faithfulness.json` (one curve per method) through
 * the file contracts (src/contracts).
 */
import type { CircuitGraph } from './graph.ts';
import { writeCircuitFile, type CircuitFileContent, type CircuitLink, type CircuitNode } from '../contracts/circuit.ts';
import { writeFaithfulnessFile, type FaithfulnessCurve } from '../contracts/faithfulness.ts';
import type { Provenance } from '../contracts/provenance.ts';

/** Inputs of {@link circuitToJson}. */
export interface CircuitExport {
  graph: CircuitGraph;
  /** Edge mask of the circuit [nEdges]. */
  mask: Uint8Array;
  /** Scores per method [nEdges]; the first key is the primary method unless `method` says otherwise. */
  scores: Record<string, ArrayLike<number>>;
  model: string;
  task: string;
  /** Task, seed, dataset hash and model hash of the prompts the circuit was found on. */
  provenance: Provenance;
  method?: string;
  /** |score| cut-off used for selection, if any. */
  pruningThreshold?: number | null;
  /** Extra metadata (counts, seconds, ...). */
  extra?: Record<string, unknown>;
}

/** Build the `circuit.json` content of a circuit. */
export function circuitToJson(x: CircuitExport): CircuitFileContent {
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
  const links: CircuitLink[] = [];
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
  const nodes: CircuitNode[] = graph.nodes
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
    provenance: x.provenance,
    metadata: { model: x.model, task: x.task, method: primary, methods, n_edges_total: graph.nEdges, n_edges: links.length, ...(x.extra ?? {}) },
    nodes,
    links,
    qParams: { pinnedIds: [], pruningThreshold: x.pruningThreshold ?? null },
  };
}

/**
 * Write `circuit.json` and `faithfulness.json` into `dir` (created if needed), both with the
 * circuit's provenance; returns the paths.
 */
export function writeCircuitFiles(dir: string, circuit: CircuitFileContent, curves: FaithfulnessCurve[]): { circuit: string; faithfulness: string } {
  return { circuit: writeCircuitFile(dir, circuit), faithfulness: writeFaithfulnessFile(dir, { provenance: circuit.provenance, curves }) };
}
