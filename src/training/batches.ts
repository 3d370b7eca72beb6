/**
 * Turning corpus sequences into padded token batches.
 */
import type { CorpusGenerator, CorpusSequence } from './corpus.ts';
import { encodeWords, type WordVocab } from './word-tokenizer.ts';

/** A right-padded batch of token ids. */
export interface TokenBatch {
  /** Token ids, row-major [batch, pos]. */
  tokens: Int32Array;
  batch: number;
  /** Padded length (longest row). */
  pos: number;
  /** True length of each row. */
  lengths: number[];
}

/** Token ids of one sequence (BOS when the sequence asks for it); throws on unknown words. */
export function sequenceIds(seq: CorpusSequence, vocab: WordVocab): number[] {
  const ids = encodeWords(seq.text, vocab, { bos: seq.bos });
  const unk = ids.indexOf(vocab.unkId);
  if (unk >= 0) {
    const word = seq.words[unk - (seq.bos ? 1 : 0)];
    throw new Error(`sequenceIds: word "${word}" of ${JSON.stringify(seq.text)} is not in the vocabulary`);
  }
  return ids;
}

/** Pads `rows` on the right with `padId` to the longest row. */
export function padBatch(rows: readonly number[][], padId: number): TokenBatch {
  if (rows.length === 0) throw new Error('padBatch: no rows');
  const pos = Math.max(...rows.map((r) => r.length));
  const tokens = new Int32Array(rows.length * pos).fill(padId);
  rows.forEach((r, b) => tokens.set(r, b * pos));
  return { tokens, batch: rows.length, pos, lengths: rows.map((r) => r.length) };
}

/**
 * Draws `groups × batchSize` sequences, sorts them by length and cuts them into `groups`
 * batches (returned in a seeded shuffled order). Bucketing by length cuts padding, which is
 * most of the cost of a step; every drawn sequence is used exactly once, so the mix is unchanged.
 */
export function bucketedBatches(gen: CorpusGenerator, vocab: WordVocab, batchSize: number, groups: number, rand: () => number): TokenBatch[] {
  const rows = Array.from({ length: batchSize * groups }, () => sequenceIds(gen.next(), vocab));
  rows.sort((a, b) => a.length - b.length);
  const out: TokenBatch[] = [];
  for (let g = 0; g < groups; g++) out.push(padBatch(rows.slice(g * batchSize, (g + 1) * batchSize), vocab.eosId));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
