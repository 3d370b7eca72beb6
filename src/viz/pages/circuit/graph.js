/**
 * The circuit graph in array form, and the queries the page needs on every slider move:
 * edges kept by a |score| threshold (a binary search over a per-method sort), the paths through
 * pinned nodes, and the exportable subgraph. Pure functions, no DOM: unit-tested directly.
 *
 * Input is circuit.json; its types come from the contracts (src/contracts/circuit.ts, the one
 * definition of the file):
 * @typedef {import('../../../contracts/circuit.ts').CircuitFile} CircuitFile
 * @typedef {import('../../../contracts/circuit.ts').CircuitNode} CircuitNode
 * @typedef {import('../../../contracts/circuit.ts').CircuitLink} CircuitLink
 *
 * @typedef {Object} Graph
 * @property {CircuitFile} circuit the source object
 * @property {CircuitNode[]} nodes [N]
 * @property {Map<string, number>} index node_id -> node index
 * @property {Int32Array} src [E] source node index of each edge
 * @property {Int32Array} dst [E] target node index of each edge
 * @property {Uint8Array} input [E] target input: 0 none, 1 q, 2 k, 3 v
 * @property {string[]} methods methods with edge scores
 * @property {string} defaultMethod metadata.method, else the first method
 * @property {Map<string, MethodScores>} _cache per-method sorted scores, built on first use by {@link methodScores}
 */

/** Codes of `target_input` in {@link Graph.input}. */
export const INPUT_CODES = { q: 1, k: 2, v: 3 };
/** Names of the codes of {@link INPUT_CODES}. */
export const INPUT_NAMES = ['', 'q', 'k', 'v'];

/**
 * Methods that score the edges: metadata.methods, metadata.method, and keys of link scores.
 * @param {CircuitFile} c
 * @returns {string[]}
 */
export function edgeMethods(c) {
  const seen = new Set(c.metadata?.methods ?? []);
  if (c.metadata?.method) seen.add(c.metadata.method);
  const probe = c.links.length > 200 ? [c.links[0], c.links[Math.floor(c.links.length / 2)], c.links[c.links.length - 1]] : c.links;
  for (const l of probe) for (const m of Object.keys(l.scores ?? {})) seen.add(m);
  if (seen.size === 0) seen.add('weight');
  return [...seen];
}

/**
 * Build the array form of a circuit.
 * @param {CircuitFile} circuit validated circuit.json
 * @returns {Graph}
 */
export function buildGraph(circuit) {
  const nodes = circuit.nodes;
  const index = new Map();
  nodes.forEach((n, k) => index.set(n.node_id, k));
  const E = circuit.links.length;
  const src = new Int32Array(E);
  const dst = new Int32Array(E);
  const input = new Uint8Array(E);
  for (let e = 0; e < E; e++) {
    const l = circuit.links[e];
    const s = index.get(l.source);
    const t = index.get(l.target);
    if (s === undefined || t === undefined) throw new Error(`links[${e}] refers to an unknown node (${s === undefined ? l.source : l.target})`);
    src[e] = s;
    dst[e] = t;
    input[e] = INPUT_CODES[l.target_input] ?? 0;
  }
  const methods = edgeMethods(circuit);
  const defaultMethod = circuit.metadata?.method && methods.includes(circuit.metadata.method) ? circuit.metadata.method : methods[0];
  return { circuit, nodes, index, src, dst, input, methods, defaultMethod, _cache: new Map() };
}

/**
 * Per-method edge scores and their order by |score| (descending).
 * @typedef {Object} MethodScores
 * @property {Float64Array} score [E] score of each edge (NaN when the method did not score it)
 * @property {Int32Array} order [K] indices of the scored edges, by |score| descending
 * @property {Float64Array} absSorted [K] |score| in that order
 * @property {number} maxAbs largest |score| (0 when none)
 * @property {number} minAbsNonzero smallest nonzero |score| (0 when none)
 */

/**
 * Scores of `method` (cached on the graph). A link without `scores[method]` uses `weight` when
 * `method` is the graph's default method (or the pseudo-method "weight"), else counts as unscored.
 * @param {Graph} g
 * @param {string} method
 * @returns {MethodScores}
 */
export function methodScores(g, method) {
  const hit = g._cache.get(method);
  if (hit) return hit;
  const links = g.circuit.links;
  const E = links.length;
  const score = new Float64Array(E);
  const useWeight = method === g.defaultMethod || method === 'weight';
  let K = 0;
  for (let e = 0; e < E; e++) {
    const s = links[e].scores?.[method];
    const v = typeof s === 'number' ? s : useWeight ? links[e].weight : NaN;
    score[e] = v;
    if (Number.isFinite(v)) K++;
  }
  const order = new Int32Array(K);
  let k = 0;
  for (let e = 0; e < E; e++) if (Number.isFinite(score[e])) order[k++] = e;
  order.sort((a, b) => Math.abs(score[b]) - Math.abs(score[a]) || a - b);
  const absSorted = new Float64Array(K);
  for (let i = 0; i < K; i++) absSorted[i] = Math.abs(score[order[i]]);
  let minAbsNonzero = 0;
  for (let i = K - 1; i >= 0; i--) {
    if (absSorted[i] > 0) {
      minAbsNonzero = absSorted[i];
      break;
    }
  }
  const r = { score, order, absSorted, maxAbs: K ? absSorted[0] : 0, minAbsNonzero };
  g._cache.set(method, r);
  return r;
}

/**
 * Number of edges with |score| ≥ threshold (binary search over the descending |score| order).
 * @param {Float64Array} absSorted [K] descending
 * @param {number} threshold
 * @returns {number}
 */
export function countAtLeast(absSorted, threshold) {
  let lo = 0;
  let hi = absSorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (absSorted[mid] >= threshold) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Edges kept at `threshold`: indices by |score| descending (a view, not a copy).
 * @param {MethodScores} ms
 * @param {number} threshold
 * @returns {Int32Array}
 */
export function keptEdges(ms, threshold) {
  return ms.order.subarray(0, countAtLeast(ms.absSorted, threshold));
}

/**
 * The threshold that keeps the top `k` edges (ties at the cut keep a few more).
 * @param {MethodScores} ms
 * @param {number} k
 * @returns {number}
 */
export function thresholdForTopK(ms, k) {
  if (ms.absSorted.length === 0) return 0;
  const i = Math.max(0, Math.min(k, ms.absSorted.length) - 1);
  return ms.absSorted[i];
}

/**
 * Paths through pinned nodes among the kept edges: every node that reaches a pin (upstream) or is
 * reached from one (downstream), and the kept edges on those paths.
 * @param {Graph} g
 * @param {Int32Array} kept edge indices
 * @param {number[]} pins node indices
 * @returns {{nodes: Uint8Array, edges: Uint8Array, nodeCount: number, edgeCount: number}}
 *   nodes [N]: 0 off path, 1 on a path, 2 pinned; edges [E]: 1 on a path
 */
export function pathsThrough(g, kept, pins) {
  const N = g.nodes.length;
  const nodes = new Uint8Array(N);
  const edges = new Uint8Array(g.src.length);
  if (pins.length === 0) return { nodes, edges, nodeCount: 0, edgeCount: 0 };
  // CSR adjacency of the kept edges, both directions.
  const outDeg = new Int32Array(N + 1);
  const inDeg = new Int32Array(N + 1);
  for (let i = 0; i < kept.length; i++) {
    outDeg[g.src[kept[i]] + 1]++;
    inDeg[g.dst[kept[i]] + 1]++;
  }
  for (let n = 0; n < N; n++) {
    outDeg[n + 1] += outDeg[n];
    inDeg[n + 1] += inDeg[n];
  }
  const outE = new Int32Array(kept.length);
  const inE = new Int32Array(kept.length);
  const oFill = outDeg.slice(0, N);
  const iFill = inDeg.slice(0, N);
  for (let i = 0; i < kept.length; i++) {
    const e = kept[i];
    outE[oFill[g.src[e]]++] = e;
    inE[iFill[g.dst[e]]++] = e;
  }
  const walk = (start, offsets, list, next) => {
    const seen = new Uint8Array(N);
    const stack = [...start];
    start.forEach((s) => (seen[s] = 1));
    while (stack.length) {
      const n = stack.pop();
      for (let j = offsets[n]; j < offsets[n + 1]; j++) {
        const e = list[j];
        edges[e] = 1;
        const m = next[e];
        if (!seen[m]) {
          seen[m] = 1;
          nodes[m] = Math.max(nodes[m], 1);
          stack.push(m);
        }
      }
    }
  };
  walk(pins, inDeg, inE, g.src); // upstream: follow edges backwards
  walk(pins, outDeg, outE, g.dst); // downstream
  for (const p of pins) nodes[p] = 2;
  let nodeCount = 0;
  let edgeCount = 0;
  for (let n = 0; n < N; n++) if (nodes[n]) nodeCount++;
  for (let e = 0; e < edges.length; e++) if (edges[e]) edgeCount++;
  return { nodes, edges, nodeCount, edgeCount };
}

/**
 * The subgraph to export as JSON: the paths through the pins when there are pins, else all kept
 * edges; same format as circuit.json, with the viewer state in `qParams` and `metadata.viewer`.
 * @param {Graph} g
 * @param {{method: string, threshold: number, pins: string[]}} state
 * @returns {CircuitFile}
 */
export function exportSubgraph(g, state) {
  const ms = methodScores(g, state.method);
  const kept = keptEdges(ms, state.threshold);
  const pinIdx = state.pins.map((p) => g.index.get(p)).filter((k) => k !== undefined);
  const paths = pinIdx.length ? pathsThrough(g, kept, pinIdx) : null;
  const linkIdx = [];
  const nodeSet = new Set(pinIdx);
  for (const e of kept) {
    if (paths && !paths.edges[e]) continue;
    linkIdx.push(e);
    nodeSet.add(g.src[e]);
    nodeSet.add(g.dst[e]);
  }
  linkIdx.sort((a, b) => a - b);
  return {
    // The subgraph is a circuit.json of the same run: it keeps the source's version and provenance.
    version: g.circuit.version,
    written_by: g.circuit.written_by,
    provenance: g.circuit.provenance,
    metadata: { ...g.circuit.metadata, viewer: { method: state.method, threshold: state.threshold, pins: state.pins, subgraph: paths ? 'paths through pinned nodes' : 'edges with |score| ≥ threshold' } },
    nodes: [...nodeSet].sort((a, b) => a - b).map((n) => g.nodes[n]),
    links: linkIdx.map((e) => g.circuit.links[e]),
    qParams: { ...(g.circuit.qParams ?? {}), pinnedIds: state.pins, pruningThreshold: state.threshold },
  };
}
