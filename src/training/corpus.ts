/**
 * Deterministic training corpus for the embedded toy IOI model (REFERENCE §6).
 *
 * Mix of sequence kinds (shares of all sequences):
 * - 40% `ioi`: "X and Y <did something>. S <gave ...> to IO." in ABBA and BABA order;
 * - 10% `three-names`: three names, one repeated; the answer is one of the two others (random);
 * - 10% `no-repeat`: two names then a third as subject; random answer among the first two, so a
 *   model should end up with logit difference ≈ 0 on such (ABC-style) prompts;
 * - 5% `fact-answer`: the answer is set by a stored per-name fact ("The one who likes pizza is X.");
 * - 15% `induction`: a random word sequence, ":", the same sequence;
 * - 20% `facts`: per-name facts "X likes FOOD." / "X lives in CITY.".
 * Half of all sequences get an unrelated name-free sentence in front so positions vary, and half
 * start with the BOS token `<|endoftext|>` so the model works with and without BOS.
 *
 * Held out from training: the Wang-style evaluation templates (src/tasks/ioi-templates.ts, both
 * orders, also as ABC-corrupted prompts) never occur in any sequence, and {@link HELD_OUT_NAMES}
 * never occur in multi-name sentences (they still appear in facts and induction sequences, so
 * their embeddings are trained).
 */
import { mulberry32 } from '../models/state-dict.ts';
import { NAMES, OBJECTS, PLACES } from '../tasks/vocab.ts';
import { ioiTemplates } from '../tasks/ioi-templates.ts';
import {
  CITIES,
  CONNECTORS,
  ENDINGS,
  FILLERS,
  FOODS,
  OPENERS,
  SUBORDINATORS,
  VERB_PHRASES,
} from './corpus-parts.ts';

/** Kinds of training sequences. */
export type SequenceKind = 'ioi' | 'three-names' | 'no-repeat' | 'fact-answer' | 'induction' | 'facts';

/** Share of each kind in the corpus (sums to 1). */
export const CORPUS_MIX: Readonly<Record<SequenceKind, number>> = {
  ioi: 0.4,
  'three-names': 0.1,
  'no-repeat': 0.1,
  'fact-answer': 0.05,
  induction: 0.15,
  facts: 0.2,
};

/**
 * Names kept out of every multi-name training sentence (every 5th name of NAMES: 10 male,
 * 10 female), so evaluation can report accuracy on names never seen in an IOI context.
 */
export const HELD_OUT_NAMES: readonly string[] = NAMES.filter((_, i) => i % 5 === 4);

/** Names allowed in multi-name training sentences. */
export const TRAIN_NAMES: readonly string[] = NAMES.filter((_, i) => i % 5 !== 4);

/** The BOS/EOS token string (GPT-2 convention). */
export const BOS_TOKEN = '<|endoftext|>';

/** Literal strings of the fixed sentence patterns below (for building the vocabulary). */
export const PATTERN_LITERALS: readonly string[] = ['likes', 'lives in', 'The one who likes is', ', and .', ':'];

// Same pattern as the BertPreTokenizer of tokenizers / @xenova/transformers: runs of
// non-space non-punctuation characters, or a single punctuation character.
const PUNCT = '\\p{P}\\u0021-\\u002F\\u003A-\\u0040\\u005B-\\u0060\\u007B-\\u007E';
const WORD_RE = new RegExp(`[^\\s${PUNCT}]+|[${PUNCT}]`, 'gu');

/** Splits text into words and punctuation exactly like a BertPreTokenizer. */
export function splitWords(text: string): string[] {
  return text.trim().match(WORD_RE) ?? [];
}

/** One generated training sequence. */
export interface CorpusSequence {
  kind: SequenceKind;
  /** The text without BOS. */
  text: string;
  /** Whether the sequence starts with {@link BOS_TOKEN}. */
  bos: boolean;
  /** Words of `text` (see {@link splitWords}); the token count is `words.length + (bos ? 1 : 0)`. */
  words: string[];
}

/** Options for {@link CorpusGenerator}. */
export interface CorpusOptions {
  seed: number;
  /**
   * Seed of the per-name facts, default `seed`. A held-out stream uses another `seed` with the
   * training run's `factSeed`, so its fact sentences state the same facts the model was taught.
   */
  factSeed?: number;
  /** Maximum tokens per sequence including BOS (the model's n_positions). Default 32. */
  maxTokens?: number;
  /** Probability of a leading BOS token. Default 0.5. */
  bosProb?: number;
  /** Probability of an unrelated sentence in front. Default 0.5. */
  prefixProb?: number;
  /** Share of each kind; default {@link CORPUS_MIX}. */
  mix?: Readonly<Record<SequenceKind, number>>;
}

/** A template placeholder category for word-level template matching. */
type Slot = 'NAME' | 'PLACE' | 'OBJECT';
type PatternWord = { word: string } | { slot: Slot };

const SENTINEL: Record<string, Slot> = { XNAMEX: 'NAME', XPLACEX: 'PLACE', XOBJECTX: 'OBJECT' };

/** Word pattern of a tasks-style template ("[B] and [A] went to the [PLACE]. ..."). */
export function templatePattern(template: string): PatternWord[] {
  const text = template
    .replace(/\[(A|B|C|S|IO)\]/g, ' XNAMEX ')
    .replace(/\[PLACE\]/g, ' XPLACEX ')
    .replace(/\[OBJECT\]/g, ' XOBJECTX ');
  return splitWords(text).map((w) => (SENTINEL[w] ? { slot: SENTINEL[w] } : { word: w }));
}

const SLOT_WORDS: Record<Slot, ReadonlySet<string>> = {
  NAME: new Set(NAMES),
  PLACE: new Set(PLACES),
  OBJECT: new Set(OBJECTS),
};

/** Whether `words` contains `pattern` as a contiguous run (slots match any word of their list). */
export function containsPattern(words: readonly string[], pattern: readonly PatternWord[]): boolean {
  outer: for (let i = 0; i + pattern.length <= words.length; i++) {
    for (let j = 0; j < pattern.length; j++) {
      const p = pattern[j];
      const w = words[i + j];
      if ('word' in p ? p.word !== w : !SLOT_WORDS[p.slot].has(w)) continue outer;
    }
    return true;
  }
  return false;
}

/** Word patterns of all evaluation templates (BABA and ABBA) that training must never contain. */
export function heldOutTemplatePatterns(): PatternWord[][] {
  return ioiTemplates().map((t) => templatePattern(t.text));
}

/** Per-name facts (fixed for a corpus seed). */
export interface NameFacts {
  food: ReadonlyMap<string, string>;
  city: ReadonlyMap<string, string>;
}

/**
 * Seeded generator of training sequences. Every call to {@link CorpusGenerator.next} advances one
 * PRNG, so the same seed gives the same stream of sequences.
 */
export class CorpusGenerator {
  readonly maxTokens: number;
  readonly facts: NameFacts;
  private readonly rand: () => number;
  private readonly bosProb: number;
  private readonly prefixProb: number;
  private readonly cumulative: [SequenceKind, number][];
  private readonly heldOut: PatternWord[][];

  constructor(opts: CorpusOptions) {
    this.maxTokens = opts.maxTokens ?? 32;
    if (this.maxTokens < 24) throw new Error(`CorpusGenerator: maxTokens ${this.maxTokens} is too small (need >= 24)`);
    this.bosProb = opts.bosProb ?? 0.5;
    this.prefixProb = opts.prefixProb ?? 0.5;
    const mix = opts.mix ?? CORPUS_MIX;
    const total = Object.values(mix).reduce((a, b) => a + b, 0);
    if (!(total > 0)) throw new Error('CorpusGenerator: mix shares must sum to a positive number');
    let acc = 0;
    this.cumulative = (Object.entries(mix) as [SequenceKind, number][]).map(([k, v]) => {
      acc += v / total;
      return [k, acc];
    });
    this.rand = mulberry32(opts.seed);
    // Facts get their own stream so they do not depend on how many sequences were drawn.
    const factRand = mulberry32((opts.factSeed ?? opts.seed) ^ 0x5eed);
    const food = new Map<string, string>();
    const city = new Map<string, string>();
    for (const n of NAMES) {
      food.set(n, FOODS[Math.floor(factRand() * FOODS.length)]);
      city.set(n, CITIES[Math.floor(factRand() * CITIES.length)]);
    }
    this.facts = { food, city };
    this.heldOut = heldOutTemplatePatterns();
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)];
  }

  /** `k` distinct entries of `xs`. */
  private distinct<T>(xs: readonly T[], k: number): T[] {
    const out: T[] = [];
    while (out.length < k) {
      const x = this.pick(xs);
      if (!out.includes(x)) out.push(x);
    }
    return out;
  }

  private kind(): SequenceKind {
    const r = this.rand();
    for (const [k, c] of this.cumulative) if (r < c) return k;
    return this.cumulative[this.cumulative.length - 1][0];
  }

  /** Fills `[PLACE]`/`[OBJECT]` with one value each. */
  private fillThings(s: string, place: string, object: string): string {
    return s.replace(/\[PLACE\]/g, place).replace(/\[OBJECT\]/g, object);
  }

  /**
   * A composed two-clause sentence: `subjects` did something together, then `actor` did
   * something to `answer`. Either "OPENER subjects VP CONNECTOR actor ENDING answer." or
   * "SUBORDINATOR subjects VP, actor ENDING answer.".
   */
  private composed(subjects: string[], actor: string, answer: string): string {
    const list = subjects.length === 2 ? `${subjects[0]} and ${subjects[1]}` : `${subjects.slice(0, -1).join(', ')} and ${subjects[subjects.length - 1]}`;
    const vp = this.pick(VERB_PHRASES);
    const ending = this.pick(ENDINGS);
    let s: string;
    if (this.rand() < 0.25) {
      s = `${this.pick(SUBORDINATORS)} ${list} ${vp}, ${actor} ${ending} ${answer}.`;
    } else {
      const opener = this.pick(OPENERS);
      const conn = this.pick(CONNECTORS);
      s = `${opener ? opener + ' ' : ''}${list} ${vp}${conn} ${actor} ${ending} ${answer}.`;
    }
    return this.fillThings(s, this.pick(PLACES), this.pick(OBJECTS));
  }

  private sentence(kind: SequenceKind): string {
    switch (kind) {
      case 'ioi': {
        const [io, s] = this.distinct(TRAIN_NAMES, 2);
        const first = this.rand() < 0.5 ? [io, s] : [s, io]; // ABBA or BABA
        return this.composed(first, s, io);
      }
      case 'three-names': {
        const names = this.distinct(TRAIN_NAMES, 3);
        const s = this.pick(names);
        const answer = this.pick(names.filter((n) => n !== s));
        return this.composed(names, s, answer);
      }
      case 'no-repeat': {
        const [a, b, c] = this.distinct(TRAIN_NAMES, 3);
        return this.composed([a, b], c, this.rand() < 0.5 ? a : b);
      }
      case 'fact-answer': {
        const useFood = this.rand() < 0.5;
        const table = useFood ? this.facts.food : this.facts.city;
        let a: string;
        let b: string;
        do [a, b] = this.distinct(TRAIN_NAMES, 2);
        while (table.get(a) === table.get(b));
        const answer = this.rand() < 0.5 ? a : b;
        const opener = this.pick(OPENERS);
        const vp = this.fillThings(this.pick(VERB_PHRASES), this.pick(PLACES), this.pick(OBJECTS));
        const q = useFood ? `The one who likes ${table.get(answer)} is` : `The one who lives in ${table.get(answer)} is`;
        return `${opener ? opener + ' ' : ''}${a} and ${b} ${vp}. ${q} ${answer}.`;
      }
      case 'induction': {
        const pool = [...NAMES, ...OBJECTS, ...PLACES, ...FOODS, ...CITIES];
        const len = 3 + Math.floor(this.rand() * 10); // 3..12 words
        const seq = Array.from({ length: len }, () => this.pick(pool)).join(' ');
        return `${seq} : ${seq}`;
      }
      case 'facts': {
        const n = 1 + Math.floor(this.rand() * 3);
        const parts: string[] = [];
        for (let i = 0; i < n; i++) {
          const name = this.pick(NAMES);
          parts.push(this.rand() < 0.5 ? `${name} likes ${this.facts.food.get(name)}.` : `${name} lives in ${this.facts.city.get(name)}.`);
        }
        return parts.join(' ');
      }
    }
  }

  /** The next training sequence. */
  next(): CorpusSequence {
    const kind = this.kind();
    const bos = this.rand() < this.bosProb;
    // Retry within the kind so rejections do not skew the mix.
    for (;;) {
      const main = this.sentence(kind);
      let text = main;
      if (this.rand() < this.prefixProb) text = `${this.pick(FILLERS)} ${main}`;
      let words = splitWords(text);
      if (words.length + (bos ? 1 : 0) > this.maxTokens) {
        text = main;
        words = splitWords(text);
      }
      if (words.length + (bos ? 1 : 0) > this.maxTokens) continue;
      // Hold out the evaluation templates (also their ABC-corrupted form: slots match any name).
      if (this.heldOut.some((p) => containsPattern(words, p))) continue;
      return { kind, text, bos, words };
    }
  }

  /** The next `n` sequences. */
  take(n: number): CorpusSequence[] {
    return Array.from({ length: n }, () => this.next());
  }
}

/** Every literal string a corpus sequence can be built from (before filling names/things). */
export function corpusStrings(): string[] {
  return [
    ...OPENERS,
    ...SUBORDINATORS,
    ...VERB_PHRASES,
    ...CONNECTORS,
    ...ENDINGS,
    ...FILLERS,
    ...PATTERN_LITERALS,
    ...NAMES,
    ...PLACES,
    ...OBJECTS,
    ...FOODS,
    ...CITIES,
  ].map((s) => s.replace(/\[(PLACE|OBJECT)\]/g, ''));
}
