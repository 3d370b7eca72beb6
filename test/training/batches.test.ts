import { describe, expect, it } from 'vitest';
import { CorpusGenerator } from '../../src/training/corpus.ts';
import { bucketedBatches, padBatch, sequenceIds } from '../../src/training/batches.ts';
import { buildVocab, collectVocabulary } from '../../src/training/word-tokenizer.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';

const vocab = buildVocab(collectVocabulary());

describe('batches', () => {
  it('pads rows on the right and records their lengths', () => {
    const b = padBatch([[5, 6, 7], [8]], 0);
    expect(b).toEqual({ tokens: new Int32Array([5, 6, 7, 8, 0, 0]), batch: 2, pos: 3, lengths: [3, 1] });
    expect(() => padBatch([], 0)).toThrow(/no rows/);
  });

  it('encodes BOS only when the sequence asks for it', () => {
    const gen = new CorpusGenerator({ seed: 2 });
    for (const s of gen.take(50)) {
      const ids = sequenceIds(s, vocab);
      expect(ids.length).toBe(s.words.length + (s.bos ? 1 : 0));
      expect(ids[0] === vocab.bosId).toBe(s.bos);
      expect(ids.slice(s.bos ? 1 : 0).map((i) => vocab.tokens[i])).toEqual(s.words);
    }
  });

  it('uses every drawn sequence exactly once and cuts padding by bucketing', () => {
    const batches = bucketedBatches(new CorpusGenerator({ seed: 9 }), vocab, 16, 4, mulberry32(1));
    const want = new CorpusGenerator({ seed: 9 }).take(64).map((s) => sequenceIds(s, vocab).join(','));
    const got = batches.flatMap((b) => b.lengths.map((len, r) => Array.from(b.tokens.slice(r * b.pos, r * b.pos + len)).join(',')));
    expect(got.sort()).toEqual(want.sort());
    expect(batches.map((b) => b.batch)).toEqual([16, 16, 16, 16]);
    const padded = batches.reduce((a, b) => a + b.batch * b.pos, 0);
    const unbucketed = 64 * Math.max(...batches.map((b) => b.pos));
    expect(padded).toBeLessThan(unbucketed);
  });
});
