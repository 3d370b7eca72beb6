/**
 * Where a streamed model's weights come from: a checkpoint on disk read one block at a time
 * (models/streamed-checkpoint.ts), never whole. The forward uploads a block's tensors just before
 * the block runs and frees them right after, so the wasm heap holds one block, not the model.
 *
 * All arrays are float32 in canonical layout (models/canonical.ts); F16 / BF16 files are widened
 * tensor by tensor as they are read.
 */
import type { ModelConfig } from './config.ts';
import type { StateDict } from './state-dict.ts';

/** A checkpoint read on demand, block by block. */
export interface BlockSource {
  /** The model's config (validated against every tensor header at open). */
  readonly config: ModelConfig;
  /** Absolute paths of every file the weights live in (config.json first). */
  readonly files: string[];
  /** Bytes of weights on disk, all files together (for reports). */
  readonly bytesOnDisk: number;
  /**
   * Canonical tensors of block `l` only, named as canonicalShapes names them
   * (`blocks.{l}.ln1.w`, `blocks.{l}.attn.W_Q` [h, d, dh], `blocks.{l}.mlp.W_in` [d, m], ...).
   * `next`: the block the caller reads after this one (−1: none), when it knows; a reader may start on it early.
   */
  readBlock(l: number, next?: number): StateDict;
  /**
   * Canonical non-block tensors except the embedding and unembedding matrices:
   * `ln_final.w` (and `.b`), `pos_embed.W_pos` [nCtx, d] (learned positions), `unembed.b_U` [V].
   */
  readGlobals(): StateDict;
  /** Rows of the token embedding W_E [V, d] for these ids (unscaled), row-major [ids.length · d]. */
  readEmbeddingRows(ids: readonly number[]): Float32Array;
  /**
   * Rows [v0, v1) of the unembedding as checkpoints store it, [V, d] (W_Uᵀ; W_E for tied models),
   * row-major [(v1 − v0) · d].
   */
  readUnembedRows(v0: number, v1: number): Float32Array;
  /** sha256 of the weight files (streamed, cached beside the checkpoint by size and mtime) and the config. */
  hash(): string;
  /** Close open file handles. */
  close(): void;
}
