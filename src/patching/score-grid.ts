/**
 * Score grids: the typed result of every patching method, ready for run.json.
 */
import type { ComponentName, GridAxes } from './components.ts';

/** Nested numbers: [layer][pos], [layer][head] or [layer][head][pos]. */
export type NestedValues = number[][] | number[][][];

/** Scores of one method on one component. */
export interface ScoreGrid {
  axes: GridAxes;
  /** [L, T], [L, H] or [L, H, T]. */
  shape: number[];
  values: NestedValues;
}

/** Scores of one method, per component. */
export type MethodScores = Partial<Record<ComponentName, ScoreGrid>>;

/** Build a nested grid from a flat row-major array. */
export function nest(flat: ArrayLike<number>, shape: number[]): NestedValues {
  const build = (offset: number, dims: number[]): number | unknown[] => {
    if (dims.length === 0) return flat[offset];
    const [n, ...rest] = dims;
    const stride = rest.reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, (_, i) => build(offset + i * stride, rest));
  };
  return build(0, shape) as NestedValues;
}

/** Flatten a grid's values row-major. */
export function flatten(grid: ScoreGrid): number[] {
  return (grid.values as unknown[]).flat(3) as number[];
}
