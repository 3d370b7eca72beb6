// Types of graph.js (plain ES module served to the browser), for the TypeScript tests.
import type { CircuitFile, CircuitNode } from '../../types.ts';

export type { CircuitFile, CircuitNode };

export declare const INPUT_CODES: { q: 1; k: 2; v: 3 };
export declare const INPUT_NAMES: ['', 'q', 'k', 'v'];

/** Array form of a circuit. */
export interface Graph {
  circuit: CircuitFile;
  nodes: CircuitNode[];
  index: Map<string, number>;
  /** [E] source node index per edge. */
  src: Int32Array;
  /** [E] target node index per edge. */
  dst: Int32Array;
  /** [E] 0 none, 1 q, 2 k, 3 v. */
  input: Uint8Array;
  methods: string[];
  defaultMethod: string;
}

/** Per-method edge scores, sorted by |score| descending. */
export interface MethodScores {
  /** [E] NaN where unscored. */
  score: Float64Array;
  /** [K] scored edge indices, strongest first. */
  order: Int32Array;
  /** [K] |score| in `order`. */
  absSorted: Float64Array;
  maxAbs: number;
  minAbsNonzero: number;
}

export interface PathResult {
  /** [N] 0 off path, 1 on a path, 2 pinned. */
  nodes: Uint8Array;
  /** [E] 1 on a path. */
  edges: Uint8Array;
  nodeCount: number;
  edgeCount: number;
}

export declare function edgeMethods(c: CircuitFile): string[];
export declare function buildGraph(circuit: CircuitFile): Graph;
export declare function methodScores(g: Graph, method: string): MethodScores;
export declare function countAtLeast(absSorted: Float64Array, threshold: number): number;
export declare function keptEdges(ms: MethodScores, threshold: number): Int32Array;
export declare function thresholdForTopK(ms: MethodScores, k: number): number;
export declare function pathsThrough(g: Graph, kept: Int32Array, pins: number[]): PathResult;
export declare function exportSubgraph(g: Graph, state: { method: string; threshold: number; pins: string[] }): CircuitFile;
