// Types of data.js (plain ES module served to the browser), for the TypeScript tests.
import type { ScoreAxis } from '../../types.ts';

export interface ScoreTensorLike {
  axes: readonly ScoreAxis[];
  shape: number[];
  values: unknown;
}

export interface HeatmapData {
  /** [rows][cols] */
  z: (number | null)[][];
  x: number[];
  xText: string[];
  yTickVals: number[];
  yText: string[];
  /** [rows][cols] */
  hover: string[][];
  xTitle: string;
  yTitle: string;
  absMax: number;
  signed: boolean;
}

export declare function shortToken(tok: string, max?: number): string;
export declare function cellLabel(axes: readonly ScoreAxis[], idx: number[], labels: string[]): string;
export declare function flattenCells(t: ScoreTensorLike, labels: string[]): { values: (number | null)[]; hover: string[] };
export declare function tensorToHeatmap(t: ScoreTensorLike, labels: string[]): HeatmapData;
export declare function methodsOf(run: { scores: Record<string, Record<string, unknown>> }): string[];
export declare function componentsOf(run: { scores: Record<string, Record<string, unknown>> }): string[];
