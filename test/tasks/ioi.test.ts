import { beforeAll, describe, expect, it } from 'vitest';
import { filterSingleTokenWords, generateIoi, groupByLength, splitBatches } from '../../src/tasks/ioi.ts';
import { BABA_TEMPLATES } from '../../src/tasks/ioi-templates.ts';
import type { PromptPair } from '../../src/tasks/types.ts';
import { NAMES } from '../../src/tasks/vocab.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer.ts';
import { fixtureTokenizerDir, fixtureTokenizerJson } from '../helpers/tokenizer-fixtures.ts';
import { gpt2Tokenizer } from './gpt2-tokenizer.ts';

let tok: Tokenizer;
beforeAll(async () => {
  tok = await gpt2Tokenizer();
});

/** Names mentioned in a prompt, in order, found by matching the known name list in the text. */
function namesIn(text: string, names: readonly string[]): string[] {
  const re = new RegExp(`\\b(${names.join('|')})\\b`, 'g');
  return [...text.matchAll(re)].map((m) => m[1]);
}

describe('generateIoi', () => {
  it('is deterministic from the seed', () => {
    const a = generateIoi(tok, { n: 20, seed: 7, corruption: 'abc' });
    const b = generateIoi(tok, { n: 20, seed: 7, corruption: 'abc' });
    expect(b).toEqual(a);
  });

  it('different seeds give different datasets', () => {
    const a = generateIoi(tok, { n: 20, seed: 1, corruption: 'abc' });
    const b = generateIoi(tok, { n: 20, seed: 2, corruption: 'abc' });
    expect(b.map((p) => p.clean)).not.toEqual(a.map((p) => p.clean));
  });

  it('samples within one dataset differ (PRNG is seeded once, not per sample)', () => {
    const pairs = generateIoi(tok, { n: 50, seed: 3, corruption: 'swap' });
    const distinct = new Set(pairs.map((p) => p.clean));
    expect(distinct.size).toBeGreaterThanOrEqual(48);
    expect(new Set(pairs.map((p) => p.answer)).size).toBeGreaterThan(10);
  });

  it('mixes BABA and ABBA evenly, and the text matches the order', () => {
    const pairs = generateIoi(tok, { n: 40, seed: 5, corruption: 'abc' });
    const orders = pairs.map((p) => p.meta?.order);
    expect(orders.filter((o) => o === 'BABA')).toHaveLength(20);
    expect(orders.filter((o) => o === 'ABBA')).toHaveLength(20);
    for (const p of pairs) {
      const io = p.answer.slice(1);
      const s = p.wrong.slice(1);
      const seq = namesIn(p.clean, NAMES);
      expect(seq).toEqual(p.meta?.order === 'BABA' ? [s, io, s] : [io, s, s]);
    }
  });

  it('prompt ends right before the answer; answer/wrong are single tokens with a leading space', () => {
    const pairs = generateIoi(tok, { n: 30, seed: 11, corruption: 'abc' });
    for (const p of pairs) {
      expect(p.answer).toMatch(/^ [A-Z][a-z]+$/);
      expect(p.wrong).toMatch(/^ [A-Z][a-z]+$/);
      expect(tok.encode(p.answer)).toEqual([p.answerId]);
      expect(tok.encode(p.wrong)).toEqual([p.wrongId]);
      expect(p.clean).toMatch(/(to|said to)$/);
      expect(p.cleanIds).toEqual(tok.encode(p.clean));
      expect(p.corruptIds).toEqual(tok.encode(p.corrupt));
      // answer appended to the prompt is exactly one more token, the answer token
      expect(tok.encode(p.clean + p.answer)).toEqual([...p.cleanIds, p.answerId]);
    }
  });

  it('reproduces a hand-written prompt for the first template', () => {
    const pairs = generateIoi(tok, { n: 10, seed: 0, corruption: 'abc', templates: [BABA_TEMPLATES[0]] });
    for (const p of pairs) {
      const m = p.meta!;
      const expected =
        m.order === 'BABA'
          ? `Then, ${m.s} and ${m.io} went to the ${m.place}. ${m.s} gave a ${m.object} to`
          : `Then, ${m.io} and ${m.s} went to the ${m.place}. ${m.s} gave a ${m.object} to`;
      expect(p.clean).toBe(expected);
      expect(p.corrupt).toBe(expected.replace(new RegExp(`\\. ${m.s} gave`), `. ${m.c} gave`));
    }
  });

  it('abc: only S2 changes, to a third distinct name; same length; answer IO, wrong S', () => {
    const pairs = generateIoi(tok, { n: 40, seed: 13, corruption: 'abc' });
    for (const p of pairs) {
      expect(p.corruptIds).toHaveLength(p.cleanIds.length);
      const diff = p.cleanIds.map((id, i) => (id !== p.corruptIds[i] ? i : -1)).filter((i) => i >= 0);
      expect(diff).toHaveLength(1);
      const pos = diff[0];
      expect(pos).toBe(p.meta?.s2Pos);
      expect(p.cleanIds[pos]).toBe(p.wrongId); // S2 in clean is the subject
      const c = tok.decode([p.corruptIds[pos]]);
      expect(c).toBe(' ' + p.meta?.c);
      expect([p.answer, p.wrong]).not.toContain(c);
      const cleanNames = namesIn(p.clean, NAMES);
      const corruptNames = namesIn(p.corrupt, NAMES);
      expect(corruptNames.slice(0, 2)).toEqual(cleanNames.slice(0, 2));
      expect(corruptNames[2]).toBe(c.slice(1));
      expect(p.answer).toBe(' ' + p.meta?.io);
      expect(p.wrong).toBe(' ' + p.meta?.s);
    }
  });

  it('swap: IO and S exchanged everywhere, so the corrupt answer is the clean wrong token', () => {
    const pairs = generateIoi(tok, { n: 40, seed: 17, corruption: 'swap' });
    for (const p of pairs) {
      expect(p.corruptIds).toHaveLength(p.cleanIds.length);
      const swapped = p.cleanIds.map((id) => (id === p.answerId ? p.wrongId : id === p.wrongId ? p.answerId : id));
      expect(p.corruptIds).toEqual(swapped);
      // In the corrupt prompt the name mentioned once (the IO, i.e. its correct answer) is the clean's wrong.
      const counts = new Map<string, number>();
      for (const nm of namesIn(p.corrupt, NAMES)) counts.set(nm, (counts.get(nm) ?? 0) + 1);
      expect(counts.get(p.wrong.slice(1))).toBe(1);
      expect(counts.get(p.answer.slice(1))).toBe(2);
    }
  });

  it('meta positions point at the name tokens', () => {
    const pairs = generateIoi(tok, { n: 20, seed: 19, corruption: 'abc' });
    for (const p of pairs) {
      const m = p.meta!;
      expect(p.cleanIds[m.ioPos as number]).toBe(p.answerId);
      expect(p.cleanIds[m.s1Pos as number]).toBe(p.wrongId);
      expect(p.cleanIds[m.s2Pos as number]).toBe(p.wrongId);
      expect(m.endPos).toBe(p.cleanIds.length - 1);
      if (m.order === 'BABA') expect(m.s1Pos).toBeLessThan(m.ioPos as number);
      else expect(m.ioPos).toBeLessThan(m.s1Pos as number);
    }
  });

  it('name filter drops multi-token names (and unknown words)', () => {
    const names = ['Mary', 'John', 'Xylophonia', 'Paul', 'Quentavious', 'Mary-Kate'];
    const f = filterSingleTokenWords(tok, names);
    expect(f.kept).toEqual(['Mary', 'John', 'Paul']);
    expect(f.dropped.map((d) => d.word)).toEqual(['Xylophonia', 'Quentavious', 'Mary-Kate']);
    for (const d of f.dropped) expect(d.tokens).toBe(tok.encode(' ' + d.word).length);
    const pairs = generateIoi(tok, { n: 30, seed: 23, corruption: 'abc', names });
    const used = new Set(pairs.flatMap((p) => [p.meta?.io, p.meta?.s, p.meta?.c]));
    expect([...used].sort()).toEqual(['John', 'Mary', 'Paul']);
  });

  it('errors clearly when fewer than 3 single-token names remain', () => {
    expect(() => generateIoi(tok, { n: 4, seed: 0, corruption: 'swap', names: ['Mary', 'Xylophonia', 'John'] })).toThrow(
      /need at least 3 names that are single tokens as " Name", found 2 \(Mary, John\); dropped: "Xylophonia" \(\d+ tokens\)/,
    );
  });

  it('rejects bad options', () => {
    expect(() => generateIoi(tok, { n: 0, seed: 0, corruption: 'abc' })).toThrow(/n must be a positive integer/);
    expect(() => generateIoi(tok, { n: 2, seed: 0, corruption: 'zzz' as 'abc' })).toThrow(/corruption must be 'abc' or 'swap'/);
    expect(() => generateIoi(tok, { n: 2, seed: 0, corruption: 'abc', templates: [] })).toThrow(/templates is empty/);
  });
});

describe('groupByLength / splitBatches', () => {
  it('groups all pairs into equal-length batches, covering every pair once', () => {
    const pairs = generateIoi(tok, { n: 60, seed: 29, corruption: 'abc' });
    const batches = groupByLength(pairs);
    expect(batches.length).toBeGreaterThan(1); // templates have different lengths
    expect(batches.reduce((s, b) => s + b.pairs.length, 0)).toBe(pairs.length);
    const seen = new Set<PromptPair>();
    for (const b of batches) {
      for (const p of b.pairs) {
        expect(p.cleanIds).toHaveLength(b.length);
        expect(p.corruptIds).toHaveLength(b.length);
        seen.add(p);
      }
    }
    expect(seen.size).toBe(pairs.length);
    const lengths = batches.map((b) => b.length);
    expect(lengths).toEqual([...new Set(pairs.map((p) => p.cleanIds.length))].sort((a, b) => a - b));
  });

  it('rejects a pair with unequal clean/corrupt lengths', () => {
    const [p] = generateIoi(tok, { n: 1, seed: 0, corruption: 'abc' });
    const bad = { ...p, corruptIds: p.corruptIds.slice(1) };
    expect(() => groupByLength([p, bad])).toThrow(/pair 1 has clean length \d+ but corrupt length \d+/);
  });

  it('splits a batch into chunks of at most maxSize, in order', () => {
    const pairs = generateIoi(tok, { n: 7, seed: 0, corruption: 'abc', templates: [BABA_TEMPLATES[0]] });
    const [batch] = groupByLength(pairs.filter((p) => p.meta?.order === 'BABA'));
    const parts = splitBatches(batch, 3);
    expect(parts.map((b) => b.pairs.length)).toEqual([3, 1]);
    expect(parts.flatMap((b) => b.pairs)).toEqual(batch.pairs);
    for (const b of parts) expect(b.length).toBe(batch.length);
    expect(() => splitBatches(batch, 0)).toThrow(/maxSize must be a positive integer/);
  });
});

describe('generateIoi on a Llama (SentencePiece) tokenizer', () => {
  it('puts <s> in front of every prompt and finds the ▁Name tokens at their positions', async () => {
    const llama = await loadTokenizer(fixtureTokenizerDir('llama2'));
    const vocab = fixtureTokenizerJson('llama2').model.vocab;
    const pairs = generateIoi(llama, { n: 12, seed: 4, corruption: 'abc' });
    for (const p of pairs) {
      expect(p.cleanIds[0]).toBe(1);
      expect(p.corruptIds[0]).toBe(1);
      expect(p.answerId).toBe(vocab[`▁${p.answer.slice(1)}`]);
      expect(p.wrongId).toBe(vocab[`▁${p.wrong.slice(1)}`]);
      const m = p.meta as Record<string, number>;
      expect(p.cleanIds[m.ioPos]).toBe(p.answerId);
      expect(p.cleanIds[m.s1Pos]).toBe(p.wrongId);
      expect(p.cleanIds[m.s2Pos]).toBe(p.wrongId);
      expect(p.cleanIds.slice(1)).toEqual(llama.encode(p.clean));
    }
    // --no-prepend-bos: the same prompts without <s>.
    const bare = generateIoi(llama.withPrependBos(false), { n: 12, seed: 4, corruption: 'abc' });
    expect(bare.map((p) => p.cleanIds)).toEqual(pairs.map((p) => p.cleanIds.slice(1)));
  });
});
