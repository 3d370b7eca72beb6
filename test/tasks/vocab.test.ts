import { describe, expect, it } from 'vitest';
import { NAMES, OBJECTS, PLACES } from '../../src/tasks/vocab.ts';
import { gpt2Tokenizer } from './gpt2-tokenizer.ts';

describe('vocab', () => {
  it('has about 100 names, 20 places, 20 objects, no duplicates, plain words', () => {
    expect(NAMES.length).toBeGreaterThanOrEqual(95);
    expect(PLACES.length).toBeGreaterThanOrEqual(20);
    expect(OBJECTS.length).toBeGreaterThanOrEqual(20);
    for (const list of [NAMES, PLACES, OBJECTS]) {
      expect(new Set(list).size).toBe(list.length);
      for (const w of list) expect(w).toMatch(/^[A-Za-z]+$/);
    }
  });

  it('every word is a single GPT-2 token with a leading space', async () => {
    const tok = await gpt2Tokenizer();
    for (const w of [...NAMES, ...PLACES, ...OBJECTS]) {
      const ids = tok.encode(' ' + w);
      expect(ids, w).toHaveLength(1);
      expect(tok.decode(ids)).toBe(' ' + w);
    }
  });

  it('objects start with a consonant (templates say "a [OBJECT]")', () => {
    for (const o of OBJECTS) expect(o[0], o).not.toMatch(/[aeiou]/i);
  });
});
