/**
 * MIB interchange (Mueller et al. 2025, circuit-localization track): relp's edge graph ⇄ MIB's
 * circuit file (src/contracts/mib.ts).
 *
 * The graphs are the same: MIB's (EAP-IG's) nodes are `input`, `a{l}.h{h}`, `m{l}`, `logits`, its
 * edge targets the q, k, v inputs of every head, every MLP input and the logits, and an edge is
 * named `parent->child<q|k|v>` (no suffix into MLPs and logits), exactly relp's
 * {@link edgeName}. GPT-2 small: 158 nodes, 32,491 edges in both. MIB ungroups grouped-query
 * models (every query head has its own k and v inputs); relp's graph of such a model is grouped
 * (one k and one v target per kv head), so both directions refuse it until relp has the
 * per-query-head convention.
 */
import { ContractError } from '../contracts/errors.ts';
import type { MibCfg, MibFile } from '../contracts/mib.ts';
import type { CircuitGraph } from './graph.ts';

/** The model fields of a MIB `cfg` that the graph does not hold. */
export interface MibModelShape {
  dModel: number;
}

/** Refuse a graph whose k / v targets are per kv head (MIB ungroups grouped-query attention); one line. */
export function checkMibGraph(graph: CircuitGraph): void {
  if (graph.nKvTargets < graph.nHeads) {
    throw new Error(`MIB circuit files need the per-query-head graph convention, and this model has ${graph.nKvHeads} kv heads for ${graph.nHeads} query heads: add --gqa per-head`);
  }
}

/** The MIB `cfg` of a graph: {n_layers, n_heads, parallel_attn_mlp, d_model}. */
export function mibCfg(graph: CircuitGraph, shape: MibModelShape): MibCfg {
  return { n_layers: graph.nLayers, n_heads: graph.nHeads, parallel_attn_mlp: !graph.mlpReadsSameLayerHeads, d_model: shape.dModel };
}

/**
 * The MIB file of a circuit: every edge of the graph with its score [nEdges] and `in_graph` =
 * `inCircuit[e] === 1` (Uint8Array [nEdges]); a node is in_graph when any of its circuit edges
 * touches it, and `logits` always (as in MIB, whose logits node is always in the graph).
 */
export function toMib(graph: CircuitGraph, scores: ArrayLike<number>, inCircuit: Uint8Array, shape: MibModelShape): MibFile {
  checkMibGraph(graph);
  if (scores.length !== graph.nEdges) throw new Error(`toMib: scores have ${scores.length} values but the graph has ${graph.nEdges} edges`);
  if (inCircuit.length !== graph.nEdges) throw new Error(`toMib: the circuit mask has ${inCircuit.length} values but the graph has ${graph.nEdges} edges`);
  const used = new Uint8Array(graph.nodes.length);
  used[graph.nodes.length - 1] = 1;
  const edges: MibFile['edges'] = {};
  for (const t of graph.targets) {
    for (let u = 0; u < t.nUp; u++) {
      const e = t.edgeOffset + u;
      const inGraph = inCircuit[e] === 1;
      if (inGraph) used[u] = used[t.node] = 1;
      edges[`${graph.nodes[u].id}->${t.id}`] = { score: scores[e], in_graph: inGraph };
    }
  }
  const nodes: MibFile['nodes'] = {};
  for (const n of graph.nodes) nodes[n.id] = { in_graph: used[n.index] === 1 };
  return { cfg: mibCfg(graph, shape), nodes, edges };
}

/** What {@link fromMib} reads: scores and circuit in graph edge order. */
export interface MibCircuit {
  /** Edge scores [nEdges]; 0 for edges the file does not list. */
  scores: Float32Array;
  /** The file's in_graph edges, 1 = in the circuit [nEdges]. */
  inCircuit: Uint8Array;
  /** Edges of the graph the file does not list (EAP-IG reads them as score 0, not in the graph). */
  missing: number;
}

/** Check the file's cfg against the graph and model; errors name the cfg field. */
function checkCfg(file: MibFile, graph: CircuitGraph, shape: MibModelShape, label: string): void {
  const want = mibCfg(graph, shape);
  for (const key of ['n_layers', 'n_heads', 'd_model', 'parallel_attn_mlp'] as const) {
    if (file.cfg[key] !== want[key]) throw new ContractError(label, `cfg.${key}`, `is ${JSON.stringify(file.cfg[key])}, but the model has ${JSON.stringify(want[key])}`);
  }
}

/** Node index of a MIB node name, or a named error. */
function nodeOf(byId: Map<string, number>, name: string, label: string, field: string): number {
  const i = byId.get(name);
  if (i === undefined) throw new ContractError(label, field, `names an unknown node "${name}" (this model's nodes are input, a{layer}.h{head}, m{layer}, logits)`);
  return i;
}

/**
 * Read a MIB file against a graph: check `cfg` (n_layers, n_heads, d_model, parallel_attn_mlp),
 * every node name and every edge name, and return scores and the in_graph edges in graph order.
 * @throws ContractError naming the field (`cfg.n_heads`, `nodes["a9.h0"]`, `edges["m1->a0.h0<q>"]`).
 */
export function fromMib(file: MibFile, graph: CircuitGraph, shape: MibModelShape, label = 'MIB circuit file'): MibCircuit {
  checkMibGraph(graph);
  checkCfg(file, graph, shape, label);
  const byId = new Map(graph.nodes.map((n) => [n.id, n.index]));
  for (const [name, node] of Object.entries(file.nodes)) {
    const field = `nodes[${JSON.stringify(name)}]`;
    nodeOf(byId, name, label, field);
    if ('neurons' in node) throw new ContractError(label, `${field}.neurons`, 'is a neuron-level circuit; relp evaluates edge circuits only');
  }
  const targets = new Map(graph.targets.map((t) => [t.id, t]));
  const scores = new Float32Array(graph.nEdges);
  const inCircuit = new Uint8Array(graph.nEdges);
  const seen = new Uint8Array(graph.nEdges);
  for (const [name, edge] of Object.entries(file.edges)) {
    const field = `edges[${JSON.stringify(name)}]`;
    const m = /^(.+?)->(.+?)(<[qkv]>)?$/.exec(name);
    if (!m) throw new ContractError(label, field, 'is not an edge name (expected PARENT->CHILD, or PARENT->CHILD<q|k|v> into a head)');
    const [, src, child, input = ''] = m;
    const u = nodeOf(byId, src, label, field);
    const v = graph.nodes[nodeOf(byId, child, label, field)];
    const t = targets.get(child + input);
    if (!t) {
      const why = v.kind === 'embedding' ? 'nothing feeds the input' : v.kind === 'attention' ? `an edge into head ${child} names its input <q>, <k> or <v>` : `an edge into ${child} has no <q|k|v> suffix`;
      throw new ContractError(label, field, `is not an edge of this model (${why})`);
    }
    if (u >= t.nUp) throw new ContractError(label, field, `is not an edge of this model (${src} is not upstream of ${t.id})`);
    const e = t.edgeOffset + u;
    scores[e] = edge.score;
    inCircuit[e] = edge.in_graph ? 1 : 0;
    seen[e] = 1;
  }
  let missing = 0;
  for (const s of seen) missing += 1 - s;
  return { scores, inCircuit, missing };
}
