// Types of layout.js (plain ES module served to the browser), for the TypeScript tests.
import type { CircuitNode } from '../../types.ts';
import type { Graph } from './graph.js';

export interface Layout {
  /** [N] css px. */
  x: Float64Array;
  /** [N] css px. */
  y: Float64Array;
  mode: 'head' | 'position';
  nLayers: number;
  nHeads: number;
  nPos: number;
  radius: number;
  rows: { y: number; label: string }[];
  cols: { x: number; label: string }[];
  plot: { left: number; right: number; top: number; bottom: number };
}

export declare function headOf(n: CircuitNode): number;
export declare function layoutGraph(nodes: CircuitNode[], size: { width: number; height: number; labels?: string[] }): Layout;
export declare function nearestNode(layout: Layout, px: number, py: number, maxDist: number): number;
export declare function segmentDist2(px: number, py: number, ax: number, ay: number, bx: number, by: number): number;
export declare function edgeEnds(layout: Layout, g: Graph, e: number, out?: Float64Array): Float64Array;
export declare function nearestEdge(layout: Layout, g: Graph, kept: Int32Array, px: number, py: number, maxDist: number, limit?: number): number;
