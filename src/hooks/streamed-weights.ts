/**
 * The weights of a streamed model: a {@link BlockSource} on disk, of which only the small global
 * tensors (final norm, learned positions, unembedding bias) stay uploaded. A block's tensors are
 * uploaded just before the block runs and freed right after; the embedding gathers only the rows
 * of the tokens in the batch; the unembedding runs in vocabulary chunks, so a 256,000-token
 * vocabulary is never uploaded whole.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../models/config.ts';
import type { BlockSource } from '../models/block-source.ts';
import { buildBlockTensors, type BlockTensors } from '../models/forward.ts';
import type { NormWeights } from '../models/parts/norm.ts';
import { STREAM_CHUNK_FLOATS, heapLimitBytes } from '../backend/memory-guard.ts';
import { wasmHeapBytes } from '../backend/wasm-peak.ts';
import { collectGarbage } from '../io/gc.ts';
import { markUsedOnce } from '../models/parts/linear.ts';

/** The heap check never stops a run below this heap size (a fresh wasm heap is tens of MB). */
const MIN_HEAP_STOP_BYTES = 256e6;

/** Blocks above this many bytes of float32 arrays are followed by a garbage collection. */
const GC_BLOCK_BYTES = 64e6;


/** Where a streamed run spent its time, in seconds (summed over calls). */
export interface StreamStats {
  /** Reading from disk and widening to float32 (positional reads; the OS page cache serves repeats). */
  readSeconds: number;
  /** Creating tensors and the block's forward layout. */
  uploadSeconds: number;
  /** Blocks uploaded. */
  blocksUploaded: number;
  /** Unembedding chunks uploaded. */
  chunksUploaded: number;
  /** Blocks served from the blocks kept uploaded (no read, no upload). */
  cacheHits: number;
}

/** Whether a gradient tape is recording (tfjs keeps no public flag for it). */
export function onTape(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}

/** One uploaded block: its forward layout and the tensors to free. */
export interface UploadedBlock {
  tensors: BlockTensors;
  dispose(): void;
}

/** Streamed weights of one model (see the module comment). Call {@link dispose} to free the globals. */
export class StreamedWeights {
  readonly stats: StreamStats = { readSeconds: 0, uploadSeconds: 0, blocksUploaded: 0, chunksUploaded: 0, cacheHits: 0 };
  /** Final norm weights (resident). */
  readonly lnFinal: NormWeights;
  /** [nCtx, d] learned positions (resident), when the model has them. */
  readonly Wpos?: tf.Tensor2D;
  /** [V] unembedding bias (resident), when the model has one. */
  readonly bU?: tf.Tensor1D;
  private readonly owned: tf.Tensor[] = [];
  /** Blocks kept uploaded between passes, by layer. */
  private readonly kept = new Map<number, UploadedBlock>();
  private lastRead?: number;

  /**
   * @param chunkFloats floats of one unembedding chunk [rows, d_model] (default 16M = 64 MB;
   *   the memory guard counts this size).
   * @param keepBlocks how many blocks (the first ones) stay uploaded between passes (default 0;
   *   `loadModel` passes the memory guard's `cachedBlockCount`).
   */
  constructor(
    readonly cfg: ModelConfig,
    readonly source: BlockSource,
    private readonly chunkFloats = STREAM_CHUNK_FLOATS,
    private readonly keepBlocks = 0,
  ) {
    const g = this.timedRead(() => source.readGlobals());
    const up = (n: string) => {
      const a = g.get(n);
      if (!a) return undefined;
      const t = tf.tensor(a.data, a.shape, 'float32');
      this.owned.push(t);
      return t;
    };
    const w = up('ln_final.w') as tf.Tensor1D;
    if (!w) throw new Error('internal: the block source has no ln_final.w');
    this.lnFinal = { w, b: up('ln_final.b') as tf.Tensor1D | undefined };
    if (cfg.normType === 'gemma-rmsnorm') {
      this.lnFinal.gain = tf.add(w, 1) as tf.Tensor1D;
      this.owned.push(this.lnFinal.gain);
    }
    this.Wpos = up('pos_embed.W_pos') as tf.Tensor2D | undefined;
    this.bU = up('unembed.b_U') as tf.Tensor1D | undefined;
  }

  private timedRead<T>(f: () => T): T {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      this.stats.readSeconds += (performance.now() - t0) / 1000;
    }
  }

  /**
   * Refuse to go on when the wasm heap has grown past the budget. The estimate counts one block,
   * but freed blocks and the activations allocated between them leave the heap fragmented: on an
   * 8B model it grew to 3.4 GB in one run (4.1 GB while blocks still had packed copies). Past about
   * 4 GB the heap corrupts tensors silently, so relp stops here instead.
   */
  private checkHeap(l: number): void {
    const heap = wasmHeapBytes();
    // Never under the heap every process starts with (tens of MB), whatever RELP_HEAP_LIMIT_GB says.
    const limit = Math.max(heapLimitBytes(), MIN_HEAP_STOP_BYTES);
    if (heap !== undefined && heap > limit) {
      throw new Error(
        `the wasm heap grew to ${(heap / 1e9).toFixed(2)} GB while streaming block ${l} of ${this.cfg.nLayers}, over the budget of ${(limit / 1e9).toFixed(2)} GB ` +
          `(the heap corrupts tensors silently near 4 GB), so relp stopped; use fewer prompts per pass, or a GPU backend`,
      );
    }
  }

  /** Whether every block stays uploaded once it has run (all fit in the kept budget). */
  get keepsEveryBlock(): boolean {
    return this.keepBlocks >= this.cfg.nLayers;
  }

  /**
   * Block `l`'s tensors; the caller disposes the result when the block is done. A kept block
   * (see `keepBlocks`) is uploaded once and its dispose does nothing until {@link dispose}.
   */
  uploadBlock(l: number): UploadedBlock {
    const hit = this.kept.get(l);
    if (hit) {
      this.stats.cacheHits++;
      return { tensors: hit.tensors, dispose: () => {} };
    }
    const keep = l < this.keepBlocks;
    const block = this.readAndUpload(l, keep);
    if (!keep) return block;
    this.kept.set(l, block);
    return { tensors: block.tensors, dispose: () => {} };
  }

  /**
   * The block read after `l`, skipping kept ones: the next one in a forward (l + 1), the one
   * before in a block-wise backward (l − 1; the direction is seen from the last block read); −1: none.
   */
  private nextToRead(l: number): number {
    const down = this.lastRead !== undefined && l < this.lastRead;
    this.lastRead = l;
    const next = down ? l - 1 : Math.max(l + 1, this.keepBlocks);
    return next >= this.keepBlocks && next < this.cfg.nLayers ? next : -1;
  }

  /** Read block `l` and upload it; `resident`: it stays for many passes, so XNNPACK may pack its matrices once. */
  private readAndUpload(l: number, resident: boolean): UploadedBlock {
    this.checkHeap(l);
    const sd = this.timedRead(() => this.source.readBlock(l, this.nextToRead(l)));
    let bytes = 0;
    for (const a of sd.values()) bytes += a.data.byteLength;
    const t0 = performance.now();
    const params = new Map<string, tf.Tensor>();
    const created: tf.Tensor[] = [];
    let tensors: BlockTensors | undefined;
    // The tidy frees the intermediate transposes; what the layout holds is kept explicitly.
    tf.tidy(() => {
      for (const [name, a] of sd) params.set(name, tf.keep(tf.tensor(a.data, a.shape, 'float32')));
      tensors = buildBlockTensors(this.cfg, l, params, (t) => (created.push(tf.keep(t)), t));
    });
    const { attn, mlp } = tensors!;
    if (!resident) for (const w of [attn.qkvW, attn.oW, mlp.inW, mlp.gateW, mlp.outW]) if (w) markUsedOnce(w);
    this.stats.uploadSeconds += (performance.now() - t0) / 1000;
    this.stats.blocksUploaded++;
    // The block's arrays are garbage now; large ones are collected at once, not blocks later.
    if (bytes > GC_BLOCK_BYTES) collectGarbage();
    return {
      tensors: tensors!,
      dispose: () => {
        for (const t of created) t.dispose();
        for (const t of params.values()) t.dispose();
      },
    };
  }

  /**
   * The embedding rows of the batch's tokens and the tokens renumbered into them: W_E restricted
   * to the distinct ids, [n, d], and ids [batch, pos] int32 into its rows. The caller disposes both.
   */
  embeddingRows(tokens: tf.Tensor2D): { WE: tf.Tensor2D; ids: tf.Tensor2D } {
    const flat = tokens.dataSync();
    const distinct = [...new Set(Array.from(flat))].sort((a, b) => a - b);
    const index = new Map(distinct.map((id, i) => [id, i]));
    const rows = this.timedRead(() => this.source.readEmbeddingRows(distinct));
    const WE = tf.tensor2d(rows, [distinct.length, this.cfg.dModel]);
    const ids = tf.tensor2d(Int32Array.from(flat, (id) => index.get(id)!), tokens.shape, 'int32');
    return { WE, ids };
  }

  /** Row ranges [v0, v1) of the vocabulary, one unembedding chunk each. */
  chunks(): [number, number][] {
    const V = this.cfg.dVocab;
    const rows = Math.max(1, Math.floor(this.chunkFloats / this.cfg.dModel));
    const out: [number, number][] = [];
    for (let v0 = 0; v0 < V; v0 += rows) out.push([v0, Math.min(V, v0 + rows)]);
    return out;
  }

  /** Upload unembedding rows [v0, v1) as a [v1 − v0, d] tensor (W_Uᵀ's rows); caller disposes. */
  private chunk(v0: number, v1: number): tf.Tensor2D {
    const rows = this.timedRead(() => this.source.readUnembedRows(v0, v1));
    this.stats.chunksUploaded++;
    return tf.tensor2d(rows, [v1 - v0, this.cfg.dModel]);
  }

  /**
   * The unembedding rows of `ids` (W_Uᵀ's rows [k, d]) and the matching bias [k], or, for the whole
   * vocabulary, one chunk at a time. Calls `f` with each piece and its column offset.
   */
  private eachPiece(ids: readonly number[] | undefined, f: (W: tf.Tensor2D, bias: tf.Tensor1D | undefined, at: number, width: number) => void): void {
    const pieces: [number, number][] | undefined = ids ? undefined : this.chunks();
    // On a gradient tape (a model whose blocks are all kept) the backward still needs the pieces:
    // the enclosing tidy frees them.
    const free = (ts: tf.Tensor[]) => (onTape() ? undefined : tf.dispose(ts));
    if (ids) {
      const d = this.cfg.dModel;
      const rows = new Float32Array(ids.length * d);
      const t0 = performance.now();
      ids.forEach((v, i) => rows.set(this.source.readUnembedRows(v, v + 1), i * d));
      this.stats.readSeconds += (performance.now() - t0) / 1000;
      const W = tf.tensor2d(rows, [ids.length, d]);
      const idx = tf.tensor1d(Int32Array.from(ids), 'int32');
      const bias = this.bU ? (tf.gather(this.bU, idx) as tf.Tensor1D) : undefined;
      try {
        f(W, bias, 0, ids.length);
      } finally {
        free([W, idx, ...(bias ? [bias] : [])]);
      }
      return;
    }
    for (const [v0, v1] of pieces!) {
      const W = this.chunk(v0, v1);
      const bias = this.bU ? (tf.slice(this.bU, [v0], [v1 - v0]) as tf.Tensor1D) : undefined;
      try {
        f(W, bias, v0, v1 - v0);
      } finally {
        free([W, ...(bias ? [bias] : [])]);
      }
    }
  }

  /**
   * Logits before any soft-cap: xf [b, p, d] → [b, p, V], chunked over the vocabulary, or
   * [b, p, ids.length] for only `ids`. No tape.
   */
  unembed(xf: tf.Tensor, ids?: readonly number[]): tf.Tensor {
    const [b, p, d] = xf.shape as [number, number, number];
    const parts: tf.Tensor[] = [];
    this.eachPiece(ids, (W, bias) => {
      parts.push(tf.tidy(() => {
        const y = tf.matMul(tf.reshape(xf, [b * p, d]), W, false, true); // [b·p, c]
        return bias ? tf.add(y, bias) : y;
      }));
    });
    const width = ids ? ids.length : this.cfg.dVocab;
    const logits = tf.tidy(() => tf.reshape(parts.length === 1 ? parts[0] : tf.concat(parts, 1), [b, p, width]));
    if (!onTape()) for (const t of parts) t.dispose();
    return logits;
  }

  /** The unembedding's vector–Jacobian product: dLogits [b, p, V or ids.length] → d xf [b, p, d]. */
  unembedVjp(dLogits: tf.Tensor, ids?: readonly number[]): tf.Tensor {
    const [b, p, V] = dLogits.shape as [number, number, number];
    const d = this.cfg.dModel;
    let acc: tf.Tensor | undefined;
    this.eachPiece(ids, (W, _bias, at, width) => {
      const next = tf.tidy(() => {
        const g = tf.slice(tf.reshape(dLogits, [b * p, V]), [0, at], [b * p, width]); // [b·p, c]
        const part = tf.matMul(g, W); // [b·p, d]
        return acc ? tf.add(acc, part) : part;
      });
      acc?.dispose();
      acc = next;
    });
    const out = tf.reshape(acc!, [b, p, d]);
    acc!.dispose();
    return out;
  }

  /** Free the resident globals and kept blocks (the source stays open: close it separately). */
  dispose(): void {
    for (const t of this.owned) t.dispose();
    for (const b of this.kept.values()) b.dispose();
    this.kept.clear();
  }
}
