/**
 * A {@link BlockSource} over canonical weights held in memory, for testing the streamed engine
 * apart from the file reader: the same weights as a whole-model HookedTransformer, served block
 * by block.
 */
import type { BlockSource } from '../../src/models/block-source.ts';
import type { ModelConfig } from '../../src/models/config.ts';
import type { StateDict } from '../../src/models/state-dict.ts';

/** Serve `w` (canonical names) block by block; counts the blocks read. */
export function memoryBlockSource(config: ModelConfig, w: StateDict): BlockSource & { blocksRead: number } {
  const d = config.dModel;
  const pick = (f: (n: string) => boolean): StateDict => new Map([...w].filter(([n]) => f(n)));
  const src = {
    config,
    files: [] as string[],
    bytesOnDisk: 0,
    blocksRead: 0,
    readBlock(l: number) {
      src.blocksRead++;
      return pick((n) => n.startsWith(`blocks.${l}.`));
    },
    readGlobals: () => pick((n) => /^(ln_final\.|pos_embed\.|unembed\.b_U)/.test(n)),
    readEmbeddingRows(ids: readonly number[]) {
      const E = w.get('embed.W_E')!.data;
      const out = new Float32Array(ids.length * d);
      ids.forEach((id, i) => out.set(E.subarray(id * d, (id + 1) * d), i * d));
      return out;
    },
    readUnembedRows(v0: number, v1: number) {
      if (config.tiedEmbeddings) return w.get('embed.W_E')!.data.slice(v0 * d, v1 * d);
      const U = w.get('unembed.W_U')!; // [d, V]
      const V = U.shape[1];
      const out = new Float32Array((v1 - v0) * d);
      for (let v = v0; v < v1; v++) for (let j = 0; j < d; j++) out[(v - v0) * d + j] = U.data[j * V + v];
      return out;
    },
    hash: () => 'memory',
    close: () => undefined,
  };
  return src;
}
