/**
 * The computational graph of a transformer at the granularity of EAP-IG (Hanna et al. 2024):
 *
 * - nodes: `input` (the embedding), every head `a{l}.h{h}`, every MLP `m{l}`, `logits`;
 * - targets (node inputs): each head has three, `a{l}.h{h}<q>`, `<k>`, `<v>`; each MLP one, `m{l}`;
 *   the logits one, `logits`. With grouped-query attention (nKvHeads < nHeads) there are two
 *   conventions ({@link GqaConvention}): `grouped` (the default) gives each kv head one k and one
 *   v target, `a{l}.kv{j}<k>` / `<v>` (an edge into it reaches every query head of its group);
 *   `per-head` (TransformerLens's `ungroup_grouped_query_attention`, MIB) gives every query head
 *   its own k and v targets `a{l}.h{h}<k>` / `<v>`, each feeding only that head's attention;
 * - edges: from every upstream node to every target it can read. A head in layer l reads the input
 *   and every node of layers < l; MLP l reads those and the heads of layer l (sequential blocks) or
 *   only those (parallel blocks, where the MLP reads resid_pre); the logits read all.
 * The topology comes from the model (models/topology.ts via `model.topology()`).
 *
 * Nodes are numbered in forward order (input, a0.h0..a0.h{H-1}, m0, a1.h0, ..., m{L-1}, logits),
 * so the upstream nodes of any target are a prefix of that order: edge (u → t) exists iff
 * u < nUpstream(t). Edge indices run target by target, upstream node by upstream node.
 */

/** What kind of component a node is (the attribution-graph `feature_type`). */
export type NodeKind = 'embedding' | 'attention' | 'mlp' | 'logits';

/** Which input of a head a target is; MLP and logits inputs have none. */
export type HeadInput = 'q' | 'k' | 'v';

/** A node of the graph. */
export interface GraphNode {
  index: number;
  /** `input`, `a{l}.h{h}`, `m{l}` or `logits`. */
  id: string;
  kind: NodeKind;
  /** Layer; the input is −1 and the logits are nLayers. */
  layer: number;
  head?: number;
}

/** A node input (edge target). */
export interface GraphTarget {
  index: number;
  /** `a{l}.h{h}<q>`, `m{l}` or `logits`. */
  id: string;
  /** Node that reads this input. */
  node: number;
  input?: HeadInput;
  /** Number of upstream nodes (they are nodes 0 .. nUp-1). */
  nUp: number;
  /** Index of this target's first edge. */
  edgeOffset: number;
}

/**
 * How k and v inputs of grouped-query attention (nKvHeads < nHeads, g = nHeads / nKvHeads query
 * heads per kv head; query head h reads kv head ⌊h / g⌋) become edge targets:
 * - `grouped`: one k and one v target per kv head, `a{l}.kv{j}<k>` / `<v>`. Its input is the kv
 *   head's k (v) input residual, normalised and projected once by W_K[j] (W_V[j]); the resulting
 *   keys (values) serve all g query heads of the group.
 * - `per-head`: one k and one v target per query head, `a{l}.h{h}<k>` / `<v>`, each reading the
 *   full residual stream: head h's keys (values) are its own k (v) input, normalised and projected
 *   by its kv head's W_K[⌊h/g⌋] (W_V[⌊h/g⌋]), and they feed only head h's attention. This is the
 *   model with W_K and W_V repeated per query head (TransformerLens `ungroup_grouped_query_attention`,
 *   the MIB benchmark's graphs). Unpatched, both compute the model; with every k (v) target of a
 *   group patched alike they agree, and to first order a grouped k (v) edge score is the sum of
 *   the per-head scores of its group.
 * With nKvHeads = nHeads both conventions are the same graph.
 */
export type GqaConvention = 'grouped' | 'per-head';

/** The GQA conventions, for option parsing. */
export const GQA_CONVENTIONS: readonly GqaConvention[] = ['grouped', 'per-head'];

/** Validate a GQA convention name with a clear error. */
export function parseGqa(s: string): GqaConvention {
  if (!(GQA_CONVENTIONS as readonly string[]).includes(s)) throw new Error(`unknown GQA convention "${s}" (use grouped or per-head)`);
  return s as GqaConvention;
}

/** The edge graph of a model with nLayers × nHeads. */
export interface CircuitGraph {
  nLayers: number;
  nHeads: number;
  /** The model's key/value heads per layer. */
  nKvHeads: number;
  /** How GQA k / v inputs are targets (see {@link GqaConvention}). */
  gqa: GqaConvention;
  /** k (and v) targets per layer: nKvHeads (grouped) or nHeads (per-head). */
  nKvTargets: number;
  /** MLP l reads the heads of layer l (false for parallel blocks). */
  mlpReadsSameLayerHeads: boolean;
  nodes: GraphNode[];
  targets: GraphTarget[];
  /** Total number of edges. */
  nEdges: number;
}

/** One edge, resolved. */
export interface GraphEdge {
  index: number;
  source: GraphNode;
  target: GraphTarget;
}

/** A head's node name, as in MIB's files: `a9.h6` is layer 9, head 6. */
export function headId(l: number, h: number): string {
  return `a${l}.h${h}`;
}

/** Index of the node `a{l}.h{h}`. */
export function headNode(nHeads: number, l: number, h: number): number {
  return 1 + l * (nHeads + 1) + h;
}

/** Index of the node `m{l}`. */
export function mlpNode(nHeads: number, l: number): number {
  return 1 + l * (nHeads + 1) + nHeads;
}

/**
 * Number of edges of the EAP-IG graph, in closed form:
 * heads: 3H · Σ_l (1 + l(H+1)); MLPs: Σ_l (1 + (l+1)H + l); logits: 1 + L(H+1).
 * GPT-2 small (12 × 12) has 32,491.
 */
export function edgeCountFormula(nLayers: number, nHeads: number): number {
  const L = nLayers;
  const H = nHeads;
  const sumL = (L * (L - 1)) / 2; // Σ_{l<L} l
  const heads = 3 * H * (L + (H + 1) * sumL);
  const mlps = L * (1 + H) + (H + 1) * sumL;
  const logits = 1 + L * (H + 1);
  return heads + mlps + logits;
}

/** Topology options of {@link buildGraph} (default: GPT-2's, sequential blocks and nKvHeads = nHeads). */
export interface GraphShape {
  nKvHeads?: number;
  mlpReadsSameLayerHeads?: boolean;
  /** GQA convention (default `grouped`); irrelevant when nKvHeads = nHeads. */
  gqa?: GqaConvention;
}

/**
 * Build the graph of a model with `nLayers` blocks of `nHeads` heads; pass `model.topology()` as
 * `shape` for other architectures (GQA, parallel blocks).
 */
export function buildGraph(nLayers: number, nHeads: number, shape: GraphShape = {}): CircuitGraph {
  if (!Number.isInteger(nLayers) || nLayers < 1) throw new Error(`buildGraph: nLayers must be a positive integer, got ${nLayers}`);
  if (!Number.isInteger(nHeads) || nHeads < 1) throw new Error(`buildGraph: nHeads must be a positive integer, got ${nHeads}`);
  const nKv = shape.nKvHeads ?? nHeads;
  if (!Number.isInteger(nKv) || nKv < 1 || nHeads % nKv !== 0) throw new Error(`buildGraph: nKvHeads ${nKv} must divide nHeads ${nHeads}`);
  const mlpSame = shape.mlpReadsSameLayerHeads ?? true;
  const gqa = parseGqa(shape.gqa ?? 'grouped');
  // Per-head k / v targets: the same targets as multi-head attention.
  const nKvT = gqa === 'per-head' ? nHeads : nKv;
  const nodes: GraphNode[] = [{ index: 0, id: 'input', kind: 'embedding', layer: -1 }];
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) nodes.push({ index: nodes.length, id: headId(l, h), kind: 'attention', layer: l, head: h });
    nodes.push({ index: nodes.length, id: `m${l}`, kind: 'mlp', layer: l });
  }
  nodes.push({ index: nodes.length, id: 'logits', kind: 'logits', layer: nLayers });
  const targets: GraphTarget[] = [];
  let offset = 0;
  const add = (id: string, node: number, nUp: number, input?: HeadInput) => {
    targets.push({ index: targets.length, id, node, nUp, edgeOffset: offset, ...(input ? { input } : {}) });
    offset += nUp;
  };
  for (let l = 0; l < nLayers; l++) {
    const headUp = headNode(nHeads, l, 0); // input + all nodes of earlier layers
    for (let h = 0; h < nHeads; h++) add(`${headId(l, h)}<q>`, headNode(nHeads, l, h), headUp, 'q');
    // A kv head's target is read by the first query head of its group (the node it is listed under).
    const g = nHeads / nKvT;
    for (const input of ['k', 'v'] as const) {
      for (let j = 0; j < nKvT; j++) add(nKvT === nHeads ? `a${l}.h${j}<${input}>` : `a${l}.kv${j}<${input}>`, headNode(nHeads, l, j * g), headUp, input);
    }
    add(`m${l}`, mlpNode(nHeads, l), mlpSame ? mlpNode(nHeads, l) : headUp);
  }
  add('logits', nodes.length - 1, nodes.length - 1);
  return { nLayers, nHeads, nKvHeads: nKv, gqa, nKvTargets: nKvT, mlpReadsSameLayerHeads: mlpSame, nodes, targets, nEdges: offset };
}

/** Targets of layer l in order: q (H), k (nKvTargets), v (nKvTargets), mlp; `layer = nLayers` gives [logits]. */
export function layerTargets(g: CircuitGraph, l: number): GraphTarget[] {
  if (l === g.nLayers) return [g.targets[g.targets.length - 1]];
  const per = g.nHeads + 2 * g.nKvTargets + 1;
  return g.targets.slice(l * per, (l + 1) * per);
}

/** Resolve edge `e` to its source node and target. */
export function edgeAt(g: CircuitGraph, e: number): GraphEdge {
  if (!Number.isInteger(e) || e < 0 || e >= g.nEdges) throw new Error(`edge index ${e} is out of range [0, ${g.nEdges})`);
  // Binary search over target offsets.
  let lo = 0;
  let hi = g.targets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (g.targets[mid].edgeOffset <= e) lo = mid;
    else hi = mid - 1;
  }
  const target = g.targets[lo];
  return { index: e, source: g.nodes[e - target.edgeOffset], target };
}

/** Edge name in EAP-IG style: `a0.h1->a2.h3<q>`. */
export function edgeName(g: CircuitGraph, e: number): string {
  const { source, target } = edgeAt(g, e);
  return `${source.id}->${target.id}`;
}

/** Index of the edge `source → target` (ids as in {@link edgeName}); throws if there is none. */
export function edgeIndex(g: CircuitGraph, sourceId: string, targetId: string): number {
  const t = g.targets.find((x) => x.id === targetId);
  if (!t) throw new Error(`unknown edge target "${targetId}" (targets look like a1.h0<q>, m0, logits)`);
  const s = g.nodes.findIndex((n) => n.id === sourceId);
  if (s < 0) throw new Error(`unknown node "${sourceId}" (nodes look like input, a0.h1, m0)`);
  if (s >= t.nUp) throw new Error(`there is no edge ${sourceId}->${targetId}: ${sourceId} is not upstream of ${targetId}`);
  return t.edgeOffset + s;
}

/** What {@link graphFromModel} reads of a model (a HookedTransformer has it): its sizes and its topology. */
export interface GraphModel {
  readonly cfg: { readonly nLayers: number; readonly nHeads: number };
  /** nKvHeads and whether MLP l reads layer l's heads (HookedTransformer.topology()). */
  topology(): GraphShape;
}

/**
 * The edge graph of a model (EAP-IG's `Graph.from_model`): `buildGraph(L, H, model.topology())`,
 * with `opts.gqa` choosing the GQA convention (default `grouped`).
 */
export function graphFromModel(model: GraphModel, opts: Pick<GraphShape, 'gqa'> = {}): CircuitGraph {
  return buildGraph(model.cfg.nLayers, model.cfg.nHeads, { ...model.topology(), gqa: opts.gqa });
}
