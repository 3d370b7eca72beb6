import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import type { BaseConfig } from '../../src/models/config.ts';
import { AdamW } from '../../src/training/adamw.ts';
import { padBatch } from '../../src/training/batches.ts';
import { trainStep, trainableParams } from '../../src/training/train-step.ts';
import { naiveGpt2Batch } from '../helpers/naive-gpt2.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromHF } from '../../src/models/config.ts';
import type { StateDict } from '../../src/models/state-dict.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { writeHFCheckpoint } from '../helpers/hf-checkpoint.ts';
import { loadNaiveHF, naiveHF } from '../helpers/naive-hf.ts';

const cfg: BaseConfig = { nLayers: 2, nHeads: 2, dModel: 16, dHead: 8, dMlp: 32, nCtx: 8, dVocab: 11, eps: 1e-5, act: 'gelu_new' };

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

describe('trainStep on a Llama-shaped model (RMSNorm, SwiGLU, RoPE, GQA 4/2, untied lm_head)', () => {
  it('reports the loss of the current weights (vs the float64 HF reference), updates every parameter, leaks nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relp-train-llama-'));
    try {
      const ck = writeHFCheckpoint(dir, { modelType: 'llama', seed: 3, std: 0.1, vocab: 11, maxPositions: 8 });
      const config = configFromHF(ck.config);
      const sd: StateDict = new Map([...ck.tensors].map(([n, t]) => [n, { shape: t.shape, data: Float32Array.from(t.data) }]));
      const rows = [
        [1, 2, 3, 4, 5, 6],
        [7, 8, 9],
        [1, 3, 5, 7, 9, 2, 4, 6],
      ];
      const batch = padBatch(rows, 0);
      const before = tf.memory().numTensors;
      const model = HookedTransformer.fromStateDict(config, sd, { trainable: true });
      const params = trainableParams(model);
      expect([...params.keys()]).toContain('blocks.0.mlp.W_gate');
      expect([...params.keys()]).toContain('unembed.W_U');
      const start = new Map([...params].map(([n, p]) => [n, Float32Array.from(p.dataSync())]));
      const opt = new AdamW(params, { beta2: 0.98, weightDecay: 0.1, clipNorm: 1 });
      const naive = loadNaiveHF(dir);
      const first = trainStep(model, params, opt, batch, 1e-2);
      expect(first.loss).toBeCloseTo(naiveLoss(rows, rows.map((r) => naiveHF(naive, r).logits)), 4);
      // Every parameter moved (the tied-free SwiGLU path reaches gate, up, down, norms, embeddings).
      for (const [n, p] of params) expect(Array.from(p.dataSync()).some((x, i) => x !== start.get(n)![i]), n).toBe(true);
      const afterOne = tf.memory().numTensors;
      let last = first.loss;
      for (let i = 0; i < 30; i++) last = trainStep(model, params, opt, batch, 1e-2).loss;
      expect(tf.memory().numTensors).toBe(afterOne);
      expect(last).toBeLessThan(first.loss * 0.5);
      // The saved HF layout holds the trained weights: its loss is the next step's reported loss.
      const now = model.toStateDict();
      writeSafetensors(join(dir, 'model.safetensors'), now);
      const again = trainStep(model, params, opt, batch, 0);
      expect(again.loss).toBeCloseTo(naiveLoss(rows, rows.map((r) => naiveHF(loadNaiveHF(dir), r).logits)), 4);
      opt.dispose();
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
