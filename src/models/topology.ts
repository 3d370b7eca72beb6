/**
 * The graph topology the model's math implies, for edge circuits: which node reads which.
 *
 * - Sequential blocks: MLP l reads the input, every node of layers < l and the heads of layer l.
 *   Parallel blocks (GPT-NeoX `use_parallel_residual`): MLP l reads resid_pre l, so not the heads of layer l.
 * - Grouped-query attention: one key/value head serves nHeads / nKvHeads query heads, so the k and
 *   v inputs are per kv head: targets `a{l}.kv{j}<k>` / `<v>` (j < nKvHeads), each an edge target
 *   of its own. An edge u → a{l}.kv{j}<k> is counted once (not once per query head it serves); its
 *   effect is on every query head of the group.
 * - Head outputs add linearly into the residual unless the architecture normalises the attention
 *   output (Gemma-2's post-attention norm): then per-head outputs do not sum to the residual, and
 *   circuits take MIB's convention (node outputs before the post-norm, the post-norm on the
 *   reading side: src/circuits/post-norm.ts).
 */
import type { ModelConfig } from './config.ts';

/** Which node reads which. */
export interface GraphTopology {
  nLayers: number;
  nHeads: number;
  /** Key/value heads per layer (k and v targets exist per kv head). */
  nKvHeads: number;
  /** MLP l reads the heads of layer l (false for parallel blocks). */
  mlpReadsSameLayerHeads: boolean;
  /** Per-head outputs sum to the attention output added to the residual (false with post-norms). */
  headsAdditive: boolean;
  /** MLP outputs are what is added to the residual (false with post-norms). */
  mlpAdditive: boolean;
}

/** The topology of a config. */
export function graphTopology(cfg: ModelConfig): GraphTopology {
  return {
    nLayers: cfg.nLayers,
    nHeads: cfg.nHeads,
    nKvHeads: cfg.nKvHeads,
    mlpReadsSameLayerHeads: !cfg.parallelAttnMlp,
    headsAdditive: !cfg.postNorms,
    mlpAdditive: !cfg.postNorms,
  };
}
