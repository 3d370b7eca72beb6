import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { EMBEDDED_MODEL_DIR, loadModelWithTokenizer } from '../../src/hooks/load-model.ts';
import { groupByLength } from '../../src/tasks/ioi.ts';
import { runTorchReference, torchAvailable } from '../helpers/torch-reference.ts';
import { evaluateByOrder, evaluateIoi, ioiEvalSets, ioiLogitDiffs, summarize } from '../../src/training/ioi-eval.ts';
import { HELD_OUT_NAMES, TRAIN_NAMES } from '../../src/training/corpus.ts';
import { buildVocab, collectVocabulary, vocabEncoder } from '../../src/training/word-tokenizer.ts';

const vocab = buildVocab(collectVocabulary());
const enc = vocabEncoder(vocab);

/**
 * A fake model whose last-position logits are known: logit[t] = (number of times t occurs in the
 * row) · 1 + (t == last token) · 0.5. For a clean IOI prompt the subject occurs twice and the IO
 * once, so LD = 1 − 2 = −1; in the ABC prompt both occur once, LD = 0.
 */
function countingForward(rows: number[][]): tf.Tensor3D {
  const V = vocab.tokens.length;
  const P = rows[0].length;
  const data = new Float32Array(rows.length * P * V);
  rows.forEach((row, b) => {
    const base = (b * P + P - 1) * V;
    for (const t of row) data[base + t] += 1;
    data[base + row[P - 1]] += 0.5;
  });
  return tf.tensor3d(data, [rows.length, P, V]);
}

describe('IOI evaluation', () => {
  const sets = ioiEvalSets(enc, 40, 3);

  it('draws each split from its own names', () => {
    const held = new Set(HELD_OUT_NAMES);
    const train = new Set(TRAIN_NAMES);
    for (const p of sets.heldOutNames) for (const k of ['io', 's', 'c']) expect(held.has(String(p.meta![k]))).toBe(true);
    for (const p of sets.trainNames) for (const k of ['io', 's', 'c']) expect(train.has(String(p.meta![k]))).toBe(true);
  });

  it('reads the logit difference at the last position of clean and ABC prompts', () => {
    const before = tf.memory().numTensors;
    const lds = ioiLogitDiffs(countingForward, sets.heldOutNames, { batchSize: 7 });
    expect(lds.clean.every((x) => x === -1)).toBe(true);
    expect(lds.abc.every((x) => x === 0)).toBe(true);
    const withBos = ioiLogitDiffs(countingForward, sets.heldOutNames, { bosId: vocab.bosId });
    expect(withBos).toEqual(lds);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('summarizes accuracy, mean, min and ABC means', () => {
    const m = summarize({ clean: [2, -1, 4, 3], abc: [0.5, -0.5, 1, 0] });
    expect(m).toEqual({ n: 4, accuracy: 0.75, meanLd: 2, minLd: -1, meanAbcLd: 0.25, meanAbsAbcLd: 0.5 });
    const r = evaluateIoi(countingForward, sets);
    expect(Object.keys(r).sort()).toEqual(['allNames', 'heldOutNames', 'trainNames']);
    expect(r.trainNames.accuracy).toBe(0);
    expect(r.trainNames.meanLd).toBe(-1);
    const byOrder = evaluateByOrder(countingForward, sets.allNames);
    expect(byOrder.ABBA.n + byOrder.BABA.n).toBe(40);
    expect(byOrder.ABBA.meanLd).toBe(-1);
  });
});

describe('IOI evaluation of the shipped model', () => {
  const shipped = existsSync(join(EMBEDDED_MODEL_DIR, 'model.safetensors'));
  it.skipIf(!shipped || !torchAvailable())('gives the logit differences of the independent PyTorch GPT-2', async () => {
    const { model, tokenizer } = await loadModelWithTokenizer(EMBEDDED_MODEL_DIR);
    const sets = ioiEvalSets(tokenizer, 60, 5);
    // The reference stacks one tensor, so use the largest group of equal-length prompts.
    const pairs = groupByLength(sets.heldOutNames).sort((a, b) => b.pairs.length - a.pairs.length)[0].pairs.slice(0, 12);
    const before = tf.memory().numTensors;
    const lds = ioiLogitDiffs((rows) => model.forward(rows), pairs);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    const dir = mkdtempSync(join(tmpdir(), 'relp-ioi-eval-'));
    try {
      const file = join(dir, 'pairs.json');
      writeFileSync(file, JSON.stringify({ pairs: pairs.map((p) => ({ clean_ids: p.cleanIds, corrupt_ids: p.corruptIds, answer_id: p.answerId, wrong_id: p.wrongId })) }));
      const ref = (await runTorchReference('ld', ['--model', EMBEDDED_MODEL_DIR, '--pairs', file])) as { clean: number[]; corrupt: number[] };
      lds.clean.forEach((x, i) => expect(x).toBeCloseTo(ref.clean[i], 3));
      lds.abc.forEach((x, i) => expect(x).toBeCloseTo(ref.corrupt[i], 3));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
