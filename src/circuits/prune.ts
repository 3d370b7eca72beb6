/**
 * Circuit selection from edge scores (top-n, threshold, greedy) and dangling-node pruning.
 * A circuit is an edge mask: Uint8Array [nEdges], 1 = the edge is in the circuit.
 */
import { edgeAt, type CircuitGraph } from './graph.ts';

/** How to select edges. */
export type Selection = 'topn' | 'threshold' | 'greedy';

function checkScores(graph: CircuitGraph, scores: ArrayLike<number>): void {
  if (scores.length !== graph.nEdges) throw new Error(`scores have ${scores.length} values but the graph has ${graph.nEdges} edges`);
}

/** Edge indices sorted by |score|, largest first (ties: lower index first). */
export function rankEdges(scores: ArrayLike<number>): number[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  return idx.sort((a, b) => Math.abs(scores[b]) - Math.abs(scores[a]) || a - b);
}

/** The `n` edges with the largest |score|. */
export function selectTopN(graph: CircuitGraph, scores: ArrayLike<number>, n: number): Uint8Array {
  checkScores(graph, scores);
  if (!Number.isInteger(n) || n < 0) throw new Error(`edge count must be a non-negative integer, got ${n}`);
  const mask = new Uint8Array(graph.nEdges);
  for (const e of rankEdges(scores).slice(0, n)) mask[e] = 1;
  return mask;
}

/** Edges with |score| ≥ threshold. */
export function selectThreshold(graph: CircuitGraph, scores: ArrayLike<number>, threshold: number): Uint8Array {
  checkScores(graph, scores);
  if (!Number.isFinite(threshold) || threshold < 0) throw new Error(`threshold must be a finite number ≥ 0, got ${threshold}`);
  const mask = new Uint8Array(graph.nEdges);
  for (let e = 0; e < graph.nEdges; e++) if (Math.abs(scores[e]) >= threshold) mask[e] = 1;
  return mask;
}

/** A max-heap of edge indices keyed by |score|. */
class EdgeHeap {
  private readonly a: number[] = [];
  constructor(private readonly key: (e: number) => number) {}
  get size(): number {
    return this.a.length;
  }
  private better(i: number, j: number): boolean {
    const ki = this.key(this.a[i]);
    const kj = this.key(this.a[j]);
    return ki > kj || (ki === kj && this.a[i] < this.a[j]);
  }
  push(e: number): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): number {
    const a = this.a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.better(l, m)) m = l;
        if (r < a.length && this.better(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Greedy selection (EAP-IG's "greedy"): start from the logits; repeatedly add the edge with the
 * largest |score| among edges whose target node is already in the circuit. Every selected edge
 * therefore has a path to the logits.
 */
export function selectGreedy(graph: CircuitGraph, scores: ArrayLike<number>, n: number): Uint8Array {
  checkScores(graph, scores);
  if (!Number.isInteger(n) || n < 0) throw new Error(`edge count must be a non-negative integer, got ${n}`);
  const mask = new Uint8Array(graph.nEdges);
  const inCircuit = new Uint8Array(graph.nodes.length);
  const heap = new EdgeHeap((e) => Math.abs(scores[e]));
  const targetsOf: number[][] = graph.nodes.map(() => []);
  for (const t of graph.targets) targetsOf[t.node].push(t.index);
  const addNode = (v: number) => {
    if (inCircuit[v]) return;
    inCircuit[v] = 1;
    for (const ti of targetsOf[v]) {
      const t = graph.targets[ti];
      for (let u = 0; u < t.nUp; u++) heap.push(t.edgeOffset + u);
    }
  };
  addNode(graph.nodes.length - 1);
  let count = 0;
  while (count < n && heap.size) {
    const e = heap.pop();
    mask[e] = 1;
    count++;
    addNode(edgeAt(graph, e).source.index);
  }
  return mask;
}

/** Select a circuit by one of the strategies; `value` is n (topn, greedy) or the threshold. */
export function selectEdges(graph: CircuitGraph, scores: ArrayLike<number>, how: Selection, value: number): Uint8Array {
  if (how === 'topn') return selectTopN(graph, scores, value);
  if (how === 'threshold') return selectThreshold(graph, scores, value);
  if (how === 'greedy') return selectGreedy(graph, scores, value);
  throw new Error(`unknown selection "${String(how)}" (use topn, threshold or greedy)`);
}

/**
 * Remove dangling edges: keep an edge only if its source is reachable from `input` and its target
 * node reaches `logits`, both through circuit edges. Returns a new mask.
 */
export function pruneDangling(graph: CircuitGraph, mask: Uint8Array): Uint8Array {
  if (mask.length !== graph.nEdges) throw new Error(`circuit mask has ${mask.length} values but the graph has ${graph.nEdges} edges`);
  const N = graph.nodes.length;
  const fromInput = new Uint8Array(N);
  fromInput[0] = 1;
  // Targets are in forward order and only read earlier nodes, so one pass suffices.
  for (const t of graph.targets) {
    if (fromInput[t.node]) continue;
    for (let u = 0; u < t.nUp; u++) {
      if (mask[t.edgeOffset + u] && fromInput[u]) {
        fromInput[t.node] = 1;
        break;
      }
    }
  }
  const toLogits = new Uint8Array(N);
  toLogits[N - 1] = 1;
  for (let u = N - 2; u >= 0; u--) {
    for (const t of graph.targets) {
      if (u < t.nUp && mask[t.edgeOffset + u] && toLogits[t.node]) {
        toLogits[u] = 1;
        break;
      }
    }
  }
  const out = new Uint8Array(graph.nEdges);
  for (const t of graph.targets) {
    if (!toLogits[t.node]) continue;
    for (let u = 0; u < t.nUp; u++) if (mask[t.edgeOffset + u] && fromInput[u]) out[t.edgeOffset + u] = 1;
  }
  return out;
}

/** Node indices touched by the circuit's edges (always including input and logits). */
export function circuitNodes(graph: CircuitGraph, mask: Uint8Array): Set<number> {
  const s = new Set<number>([0, graph.nodes.length - 1]);
  for (const t of graph.targets) {
    for (let u = 0; u < t.nUp; u++) {
      if (mask[t.edgeOffset + u]) {
        s.add(u);
        s.add(t.node);
      }
    }
  }
  return s;
}

/** Number of edges in a mask. */
export function countEdges(mask: Uint8Array): number {
  let n = 0;
  for (const v of mask) n += v;
  return n;
}
