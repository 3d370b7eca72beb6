/** Random clean/corrupt prompt pairs for patching tests: odd positions differ, answer 3, wrong 7. */
import { mulberry32 } from '../../src/models/state-dict.ts';
import type { PromptPair } from '../../src/tasks/types.ts';

/** `n` pairs of `pos` random token ids below `vocab`, deterministic from `seed`. */
export function randomPairs(n: number, pos: number, seed: number, vocab: number): PromptPair[] {
  const r = mulberry32(seed);
  const id = () => Math.floor(r() * vocab);
  return Array.from({ length: n }, () => {
    const clean = Array.from({ length: pos }, id);
    const corrupt = clean.map((t, i) => (i % 2 === 1 ? id() : t));
    return { clean: '', corrupt: '', answer: '', wrong: '', cleanIds: clean, corruptIds: corrupt, answerId: 3, wrongId: 7 };
  });
}
