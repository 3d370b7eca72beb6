import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BOS_TOKEN,
  CORPUS_MIX,
  CorpusGenerator,
  HELD_OUT_NAMES,
  TRAIN_NAMES,
  splitWords,
  type CorpusSequence,
  type SequenceKind,
} from '../../src/training/corpus.ts';
import { buildVocab, collectVocabulary, tokenizerConfigJson, tokenizerJson } from '../../src/training/word-tokenizer.ts';
import { NAMES, OBJECTS, PLACES } from '../../src/tasks/vocab.ts';
import { BABA_TEMPLATES, ioiTemplates } from '../../src/tasks/ioi-templates.ts';
import { loadTokenizer } from '../../src/tokenizer.ts';

const N = 20_000;
const sample: CorpusSequence[] = new CorpusGenerator({ seed: 7 }).take(N);
const nameSet = new Set(NAMES);
const namesIn = (s: CorpusSequence) => s.words.filter((w) => nameSet.has(w));

describe('CorpusGenerator', () => {
  it('is deterministic in the seed', () => {
    const a = new CorpusGenerator({ seed: 3 }).take(200);
    const b = new CorpusGenerator({ seed: 3 }).take(200);
    const c = new CorpusGenerator({ seed: 4 }).take(200);
    expect(a).toEqual(b);
    expect(a.map((s) => s.text)).not.toEqual(c.map((s) => s.text));
    // Samples differ from each other (no reseeding per sample).
    expect(new Set(a.map((s) => s.text)).size).toBeGreaterThan(190);
  });

  it('follows the mix of REFERENCE §6 (40/10/10/5/15/20)', () => {
    expect(CORPUS_MIX).toEqual({ ioi: 0.4, 'three-names': 0.1, 'no-repeat': 0.1, 'fact-answer': 0.05, induction: 0.15, facts: 0.2 });
    const counts = new Map<SequenceKind, number>();
    for (const s of sample) counts.set(s.kind, (counts.get(s.kind) ?? 0) + 1);
    for (const [kind, share] of Object.entries(CORPUS_MIX) as [SequenceKind, number][]) {
      // Binomial standard error at N = 20k is <= 0.0035; allow ~4 SE.
      expect(Math.abs((counts.get(kind) ?? 0) / N - share), kind).toBeLessThan(0.015);
    }
    const bos = sample.filter((s) => s.bos).length / N;
    expect(Math.abs(bos - 0.5)).toBeLessThan(0.015);
  });

  it('puts an unrelated sentence in front of about half of the sequences', () => {
    // The main part of every kind starts with a name, an opener/subordinator or (induction) any
    // content word; a filler is a name-free sentence ending in "." before it. Count IOI
    // sequences whose first sentence has no name.
    const ioi = sample.filter((s) => s.kind === 'ioi');
    const withPrefix = ioi.filter((s) => {
      const firstSentence = s.words.slice(0, s.words.indexOf('.') + 1);
      return !firstSentence.some((w) => nameSet.has(w));
    });
    expect(Math.abs(withPrefix.length / ioi.length - 0.5)).toBeLessThan(0.03);
  });

  it('keeps every sequence within 32 tokens including BOS', () => {
    expect(sample.filter((s) => s.words.length + (s.bos ? 1 : 0) > 32)).toEqual([]);
    expect(Math.max(...sample.map((s) => s.words.length + (s.bos ? 1 : 0)))).toBeGreaterThan(24);
  });

  it('gives IOI sequences the indirect object as the answer, in both orders', () => {
    let abba = 0;
    for (const s of sample.filter((x) => x.kind === 'ioi')) {
      const names = namesIn(s);
      expect(names).toHaveLength(4); // IO, S (in some order), S2, answer
      const [n1, n2, s2, ans] = names;
      expect(n1).not.toBe(n2);
      expect([n1, n2]).toContain(s2);
      expect(ans).toBe(s2 === n1 ? n2 : n1);
      expect(s.words[s.words.length - 2]).toBe(ans);
      if (s2 === n2) abba++;
    }
    const nIoi = sample.filter((x) => x.kind === 'ioi').length;
    expect(Math.abs(abba / nIoi - 0.5)).toBeLessThan(0.03);
  });

  it('answers no-repeat sequences with one of the first two names at random', () => {
    let first = 0;
    const nr = sample.filter((x) => x.kind === 'no-repeat');
    for (const s of nr) {
      const [a, b, c, ans] = namesIn(s);
      expect(new Set([a, b, c]).size).toBe(3);
      expect([a, b]).toContain(ans);
      if (ans === a) first++;
    }
    expect(Math.abs(first / nr.length - 0.5)).toBeLessThan(0.05);
  });

  it('answers three-name sequences with a name other than the repeated one', () => {
    for (const s of sample.filter((x) => x.kind === 'three-names')) {
      const [a, b, c, s2, ans] = namesIn(s);
      expect(new Set([a, b, c]).size).toBe(3);
      expect([a, b, c]).toContain(s2);
      expect([a, b, c].filter((n) => n !== s2)).toContain(ans);
    }
  });

  it('sets fact-answer sequences by the stored per-name facts', () => {
    const gen = new CorpusGenerator({ seed: 7 });
    const seqs = gen.take(4000).filter((s) => s.kind === 'fact-answer');
    expect(seqs.length).toBeGreaterThan(100);
    for (const s of seqs) {
      const m = /The one who (likes|lives in) (\w+) is (\w+)\.$/.exec(s.text);
      expect(m, s.text).not.toBeNull();
      const table = m![1] === 'likes' ? gen.facts.food : gen.facts.city;
      expect(table.get(m![3])).toBe(m![2]);
    }
    // Per-name fact sentences use the same table.
    for (const s of gen.take(2000).filter((x) => x.kind === 'facts')) {
      for (const m of s.text.matchAll(/(\w+) (likes|lives in) (\w+)\./g)) {
        expect((m[2] === 'likes' ? gen.facts.food : gen.facts.city).get(m[1])).toBe(m[3]);
      }
    }
  });

  it('builds induction sequences as "seq : seq"', () => {
    for (const s of sample.filter((x) => x.kind === 'induction')) {
      const colon = s.words.lastIndexOf(':');
      const second = s.words.slice(colon + 1);
      const first = s.words.slice(colon - second.length, colon);
      expect(second.length).toBeGreaterThanOrEqual(3);
      expect(first).toEqual(second);
    }
  });

  it('keeps held-out names out of every multi-name sentence but uses them elsewhere', () => {
    expect(HELD_OUT_NAMES).toHaveLength(20);
    expect(new Set([...HELD_OUT_NAMES, ...TRAIN_NAMES]).size).toBe(NAMES.length);
    const held = new Set(HELD_OUT_NAMES);
    const multi: SequenceKind[] = ['ioi', 'three-names', 'no-repeat', 'fact-answer'];
    for (const s of sample.filter((x) => multi.includes(x.kind))) {
      for (const n of namesIn(s)) expect(held.has(n), `${n} in ${s.text}`).toBe(false);
    }
    const elsewhere = new Set(sample.filter((x) => !multi.includes(x.kind)).flatMap(namesIn));
    for (const n of HELD_OUT_NAMES) expect(elsewhere.has(n), n).toBe(true);
  });

  it('never contains a Wang-style evaluation template, clean or ABC-corrupted', () => {
    // Independent check on the text with regular expressions (the generator filters by words).
    const alt = (xs: readonly string[]) => `(?:${xs.join('|')})`;
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const regexes = ioiTemplates(BABA_TEMPLATES).map((t) => {
      const parts = t.text.split(/(\[A\]|\[B\]|\[PLACE\]|\[OBJECT\])/);
      const body = parts
        .map((p) => (p === '[A]' || p === '[B]' ? alt(NAMES) : p === '[PLACE]' ? alt(PLACES) : p === '[OBJECT]' ? alt(OBJECTS) : esc(p)))
        .join('');
      return new RegExp(`(?:^|[ .,])${body}(?= )`);
    });
    // Sanity: the regexes do match the evaluation prompts themselves.
    expect(regexes[0].test('It was late. Then, Mary and John went to the store. John gave a ring to Mary.')).toBe(true);
    expect(regexes[1].test('Then, John and Mary went to the store. Anna gave a ring to Mary.')).toBe(true);
    const hits = sample.filter((s) => regexes.some((re) => re.test(s.text))).map((s) => s.text);
    expect(hits).toEqual([]);
  });
});

describe('corpus vocabulary and tokenizer', () => {
  const words = collectVocabulary();
  const vocab = buildVocab(words);

  it('holds every word of the corpus and of the evaluation templates', () => {
    const unknown = new Set(sample.flatMap((s) => s.words).filter((w) => !vocab.ids.has(w)));
    expect([...unknown]).toEqual([]);
    for (const t of ioiTemplates()) {
      for (const w of splitWords(t.text.replace(/\[[A-Z]+\]/g, ' '))) expect(vocab.ids.has(w), w).toBe(true);
    }
    for (const w of [...NAMES, ...PLACES, ...OBJECTS]) expect(vocab.ids.has(w), w).toBe(true);
    expect(vocab.tokens.slice(0, 2)).toEqual([BOS_TOKEN, '[UNK]']);
    expect(vocab.tokens.length).toBeLessThan(400);
  });

  it('trains on every word an evaluation template uses (no untrained embeddings at eval)', () => {
    const seen = new Set(sample.flatMap((s) => s.words));
    const missing = ioiTemplates()
      .flatMap((t) => splitWords(t.text.replace(/\[[A-Z]+\]/g, ' ')))
      .filter((w) => !seen.has(w));
    expect([...new Set(missing)]).toEqual([]);
  });

  it('makes every name one token, with or without a leading space, via the shipped tokenizer.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-wordtok-'));
    try {
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(vocab)));
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfigJson(32)));
      const tok = await loadTokenizer(dir);
      for (const n of NAMES) {
        const a = tok.encode(' ' + n);
        expect(a, n).toHaveLength(1);
        expect(tok.encode(n)).toEqual(a);
        expect(a[0]).toBe(vocab.ids.get(n));
        expect(tok.decode(a)).toBe(' ' + n);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
