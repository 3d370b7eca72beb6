import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnswerInContextError, answerInContext } from '../../src/tasks/answer.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer.ts';
import { writeMetaspaceTokenizer } from '../helpers/metaspace-tokenizer.ts';
import { gpt2Tokenizer } from './gpt2-tokenizer.ts';

const WORDS = ['▁and', '▁went', '▁out', '▁gave', '▁the', '▁ball', '▁to'];
const PROMPT = 'Sue and Ann went out. Ann gave the ball to';

/** A Metaspace tokenizer and its vocabulary. */
interface Built {
  tok: Tokenizer;
  vocab: Record<string, number>;
}
let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'relp-answer-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
async function build(tokens: string[]): Promise<Built> {
  const dir = join(root, `tok${count++}`);
  const vocab = writeMetaspaceTokenizer(dir, tokens, '.');
  return { tok: await loadTokenizer(dir), vocab };
}

/** The AnswerInContextError that `f` throws. */
function errorOf(f: () => unknown): AnswerInContextError {
  try {
    f();
  } catch (e) {
    if (e instanceof AnswerInContextError) return e;
    throw e;
  }
  throw new Error('expected an AnswerInContextError');
}

describe('answerInContext on a tokenizer that prepends ▁ and merges across words', () => {
  // The case: the vocabulary has `Sue` but no `▁Sue`, so "Sue" alone is [▁, Sue].
  let noSpaceNames: Built;
  // A vocabulary with `▁Sue`: " Sue" alone is [▁, ▁Sue] (the normaliser's ▁ plus the space's).
  let spaceNames: Built;
  beforeAll(async () => {
    noSpaceNames = await build([...WORDS, 'Sue', 'Ann']);
    spaceNames = await build(['▁Sue', '▁Ann', ...WORDS, 'Sue', 'Ann']);
  });

  it('"Sue" after "… to " is the one token Sue, though "Sue" alone is two tokens', () => {
    const { tok, vocab } = noSpaceNames;
    expect(tok.encode('Sue')).toEqual([vocab['▁'], vocab.Sue]);
    expect(() => tok.toSingleToken('Sue')).toThrow(/2 tokens/); // the old, answer-alone resolution
    const prompt = `${PROMPT} `;
    expect(tok.encodePrompt(prompt).slice(-2)).toEqual([vocab['▁to'], vocab['▁']]);
    expect(answerInContext(tok, prompt, 'Sue')).toBe(vocab.Sue);
    expect(answerInContext(tok, prompt, 'Ann')).toBe(vocab.Ann);
  });

  it('" Sue" after "… to" is the one token ▁Sue, though " Sue" alone is two tokens', () => {
    const { tok, vocab } = spaceNames;
    expect(tok.encode(' Sue')).toEqual([vocab['▁'], vocab['▁Sue']]);
    expect(answerInContext(tok, PROMPT, ' Sue')).toBe(vocab['▁Sue']);
    expect(answerInContext(tok, PROMPT, ' Ann', tok.encodePrompt(PROMPT))).toBe(vocab['▁Ann']);
  });

  it('refuses an answer the tokenizer merges with the prompt: the prompt\'s tokens are not a prefix', () => {
    const { tok, vocab } = spaceNames;
    // "… to " ends in ▁, which "Sue" then joins: "… to Sue" is [… ▁to, ▁Sue].
    const e = errorOf(() => answerInContext(tok, `${PROMPT} `, 'Sue'));
    expect(e.reason).toBe('not-prefix');
    expect(e.ids).toEqual([vocab['▁Sue']]);
    expect(e.message).toBe(`does not follow the prompt as its own token: the prompt's tokens are not a prefix of prompt + answer (the tokenizer merges across the boundary: the prompt's [" "] becomes [" Sue"])`);
  });

  it('refuses an answer that adds two tokens, or none, naming the pieces in context', () => {
    const { tok, vocab } = spaceNames;
    const e = errorOf(() => answerInContext(tok, PROMPT, ' Sue Ann'));
    expect(e.reason).toBe('several');
    expect(e.message).toBe(`must be a single token but splits into 2 tokens: [" Sue", " Ann"] (ids ${vocab['▁Sue']}, ${vocab['▁Ann']}) after the prompt`);
    expect(errorOf(() => answerInContext(tok, PROMPT, '')).reason).toBe('none');
    // Two spaces: the normaliser's ▁ stays on its own.
    const two = errorOf(() => answerInContext(noSpaceNames.tok, `${PROMPT} `, ' Sue'));
    expect(two.ids).toEqual([noSpaceNames.vocab['▁'], noSpaceNames.vocab.Sue]);
  });

  it('refuses an answer that becomes the unknown token', () => {
    const { tok } = spaceNames;
    const e = errorOf(() => answerInContext(tok, PROMPT, ' Z'));
    expect(e.reason).toBe('several'); // ▁ and <unk>
    const { tok: t2 } = noSpaceNames;
    expect(errorOf(() => answerInContext(t2, `${PROMPT} `, 'Z')).message).toBe('is not a single known token: "Z" is not in the vocabulary (it maps to the unknown token "<unk>")');
  });
});

describe('answerInContext on GPT-2', () => {
  it('gives the token of " Mary" alone, as before', async () => {
    const tok = await gpt2Tokenizer();
    const prompt = 'When Mary and John went to the store, John gave a drink to';
    expect(answerInContext(tok, prompt, ' Mary')).toBe(tok.toSingleToken(' Mary'));
    expect(answerInContext(tok, prompt, ' Mary')).toBe(5335); // " Mary" in GPT-2's vocabulary
  });
});
