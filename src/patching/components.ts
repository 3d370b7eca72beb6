/**
 * Patchable components: one generic description ("setter") per component, used by every
 * method. A component names its hook, the axes of its score grid, how to mask one cell of the
 * activation, and how to reduce an elementwise attribution to the grid.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../models/config.ts';
import type { ScoreTensor } from '../contracts/score-tensor.ts';
import { COMPONENT_NAMES, type ComponentName } from './names.ts';

export { COMPONENT_NAMES, type ComponentName } from './names.ts';

/** The "every block" set, as TransformerLens' get_act_patch_block_every (`every_block`). */
export const EVERY_BLOCK: ComponentName[] = ['resid_pre', 'attn_out', 'mlp_out'];

/** How one component is patched and scored. */
export interface ComponentSpec {
  name: ComponentName;
  /** Hook name at layer l. */
  hook: (l: number) => string;
  axes: ScoreTensor['axes'];
  /** Per-layer grid shape: [pos], [head] or [head, pos]. */
  cellShape: (cfg: ModelConfig, pos: number) => number[];
  /** Boolean mask of one cell over one prompt's activation, shape [1, ...activation dims]. */
  cellMask: (cfg: ModelConfig, pos: number, cell: number[]) => tf.Tensor;
  /** Reduce an elementwise attribution [batch, ...activation dims] to the per-layer grid. */
  reduce: (x: tf.Tensor) => tf.Tensor;
  /** Reduce keeping the batch axis: [batch, ...grid]. */
  reducePerPrompt: (x: tf.Tensor) => tf.Tensor;
  /**
   * First position a cell's patch touches, when the activation has a position axis at 1 and the
   * cell patches one position; undefined when it spans all positions. Earlier positions are then
   * unchanged (causal attention), so sweeps recompute only the suffix.
   */
  cellPos?: (cell: number[]) => number;
}

function oneHotMask(shape: number[], index: number[]): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Uint8Array(size);
  let flat = 0;
  for (let i = 0; i < shape.length; i++) flat = flat * shape[i] + index[i];
  data[flat] = 1;
  return tf.tensor(data, shape, 'bool');
}

/** [b, p, d] activations scored per position. */
function residLike(name: ComponentName, suffix: string): ComponentSpec {
  return {
    name,
    hook: (l) => `blocks.${l}.${suffix}`,
    axes: ['layer', 'pos'],
    cellShape: (_c, pos) => [pos],
    cellMask: (_c, pos, [p]) => oneHotMask([1, pos, 1], [0, p, 0]), // [1, pos, 1]
    reduce: (x) => tf.sum(x, [0, 2]), // [pos]
    reducePerPrompt: (x) => tf.sum(x, 2), // [b, pos]
    cellPos: ([p]) => p,
  };
}

/**
 * [b, p, h, dh] activations scored per head over all positions. Keys and values have kv heads
 * (grouped-query attention), so their grids are [kv_head].
 */
function headLike(name: ComponentName, suffix: string, kv = false): ComponentSpec {
  const n = (c: ModelConfig) => (kv ? c.nKvHeads : c.nHeads);
  return {
    name,
    hook: (l) => `blocks.${l}.attn.${suffix}`,
    axes: ['layer', 'head'],
    cellShape: (c) => [n(c)],
    cellMask: (c, _pos, [h]) => oneHotMask([1, 1, n(c), 1], [0, 0, h, 0]), // [1, 1, head, 1]
    reduce: (x) => tf.sum(x, [0, 1, 3]), // [head]
    reducePerPrompt: (x) => tf.sum(x, [1, 3]), // [b, head]
  };
}

const SPECS: Record<ComponentName, ComponentSpec> = {
  resid_pre: residLike('resid_pre', 'hook_resid_pre'),
  resid_mid: residLike('resid_mid', 'hook_resid_mid'),
  resid_post: residLike('resid_post', 'hook_resid_post'),
  attn_out: residLike('attn_out', 'hook_attn_out'),
  mlp_out: residLike('mlp_out', 'hook_mlp_out'),
  z: headLike('z', 'hook_z'),
  q: headLike('q', 'hook_q'),
  k: headLike('k', 'hook_k', true),
  v: headLike('v', 'hook_v', true),
  z_pos: {
    name: 'z_pos',
    hook: (l) => `blocks.${l}.attn.hook_z`,
    axes: ['layer', 'head', 'pos'],
    cellShape: (c, pos) => [c.nHeads, pos],
    cellMask: (c, pos, [h, p]) => oneHotMask([1, pos, c.nHeads, 1], [0, p, h, 0]), // [1, pos, head, 1]
    reduce: (x) => tf.transpose(tf.sum(x, [0, 3])), // [pos, head] → [head, pos]
    reducePerPrompt: (x) => tf.transpose(tf.sum(x, 3), [0, 2, 1]), // [b, head, pos]
    cellPos: ([, p]) => p,
  },
  pattern: {
    name: 'pattern',
    hook: (l) => `blocks.${l}.attn.hook_pattern`,
    axes: ['layer', 'head'],
    cellShape: (c) => [c.nHeads],
    cellMask: (c, pos, [h]) => oneHotMask([1, c.nHeads, 1, 1], [0, h, 0, 0]), // [1, head, 1, 1]
    reduce: (x) => tf.sum(x, [0, 2, 3]), // [head]
    reducePerPrompt: (x) => tf.sum(x, [2, 3]), // [b, head]
  },
};

/** The spec of a component, with a clear error for unknown names. */
export function componentSpec(name: string): ComponentSpec {
  const s = SPECS[name as ComponentName];
  if (!s) throw new Error(`unknown component "${name}" (use: ${COMPONENT_NAMES.join(', ')})`);
  return s;
}

/**
 * Parse a comma list of components. `every` is every component (all of {@link COMPONENT_NAMES});
 * `every_block` is TransformerLens' block set (resid_pre, attn_out, mlp_out).
 */
export function parseComponents(list: string | string[]): ComponentName[] {
  const items = (Array.isArray(list) ? list : list.split(',')).map((s) => s.trim()).filter(Boolean);
  const out: ComponentName[] = [];
  for (const it of items) {
    const names = it === 'every' ? [...COMPONENT_NAMES] : it === 'every_block' ? EVERY_BLOCK : [componentSpec(it).name];
    for (const n of names) if (!out.includes(n)) out.push(n);
  }
  if (out.length === 0) throw new Error('no components given');
  return out;
}

/** All cells of a per-layer grid, row-major. */
export function gridCells(shape: number[]): number[][] {
  const cells: number[][] = [[]];
  for (const n of shape) {
    const next: number[][] = [];
    for (const c of cells) for (let i = 0; i < n; i++) next.push([...c, i]);
    cells.splice(0, cells.length, ...next);
  }
  return cells;
}
