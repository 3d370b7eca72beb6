import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import type { GPT2Config } from '../../src/models/config.ts';
import { AdamW } from '../../src/training/adamw.ts';
import { padBatch } from '../../src/training/batches.ts';
import { trainStep, trainableParams } from '../../src/training/train-step.ts';
import { naiveGpt2Batch } from '../helpers/naive-gpt2.ts';

const cfg: GPT2Config = { nLayers: 2, nHeads: 2, dModel: 16, dHead: 8, dMlp: 32, nCtx: 8, dVocab: 11, eps: 1e-5, act: 'gelu_new' };

function naiveLoss(rows: number[][], logits: number[][][]): number {
  let total = 0;
  let n = 0;
  rows.forEach((r, b) => {
    for (let i = 0; i + 1 < r.length; i++) {
      const l = logits[b][i];
      const mx = Math.max(...l);
      total += mx + Math.log(l.reduce((a, x) => a + Math.exp(x - mx), 0)) - l[r[i + 1]];
      n++;
    }
  });
  return total / n;
}

describe('trainStep', () => {
  it('reports the loss of the current weights, learns a fixed batch and leaks no tensors', () => {
    const sd = randomStateDict(cfg, { seed: 1, std: 0.1 });
    const rows = [
      [1, 2, 3, 4, 5, 6],
      [7, 8, 9],
      [1, 3, 5, 7, 9, 2, 4, 6],
    ];
    const batch = padBatch(rows, 0);
    const before = tf.memory().numTensors;
    const model = HookedTransformer.fromStateDict(cfg, sd, { trainable: true });
    const params = trainableParams(model);
    const opt = new AdamW(params, { beta2: 0.98, weightDecay: 0.1, clipNorm: 1 });
    const first = trainStep(model, params, opt, batch, 1e-2);
    // Independent float64 forward on the unpadded rows.
    expect(first.loss).toBeCloseTo(naiveLoss(rows, naiveGpt2Batch(cfg, sd, rows)), 4);
    expect(first.gradNorm).toBeGreaterThan(0);
    const afterOne = tf.memory().numTensors;
    let last = first.loss;
    for (let i = 0; i < 30; i++) last = trainStep(model, params, opt, batch, 1e-2).loss;
    expect(tf.memory().numTensors).toBe(afterOne);
    expect(last).toBeLessThan(first.loss * 0.5);
    // The reported loss is that of the weights before the step: recompute it from toStateDict.
    const sdNow = model.toStateDict();
    const again = trainStep(model, params, opt, batch, 0);
    expect(again.loss).toBeCloseTo(naiveLoss(rows, naiveGpt2Batch(cfg, sdNow, rows)), 4);
    opt.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a model that is not trainable', () => {
    const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 2 }));
    expect(() => trainableParams(model)).toThrow(/not a tf.Variable.*trainable: true/);
    model.dispose();
  });
});
