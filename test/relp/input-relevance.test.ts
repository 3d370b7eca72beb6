import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyGPT2 } from '../fixtures/reference/tiny-gpt2.ts';
import { runTorchReference, torchAvailable, type ReferenceLrpResult } from '../helpers/torch-reference.ts';
import { loadModel, type LoadedModel } from '../../src/hooks/load-model.ts';
import { heatLine, inputRelevance } from '../../src/relp/input-relevance.ts';

describe('inputRelevance (relp lrp)', () => {
  let dir: string;
  let m: LoadedModel;
  let zero: LoadedModel;
  const ids = [3, 17, 9, 4, 22, 5];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relp-lrp-'));
    writeTinyGPT2(join(dir, 'm'), { nLayer: 2, nHead: 2, nEmbd: 16, vocab: 30, nPositions: 16, seed: 4, std: 0.3 });
    writeTinyGPT2(join(dir, 'z'), { nLayer: 2, nHead: 2, nEmbd: 16, vocab: 30, nPositions: 16, seed: 5, std: 0.3, zeroBias: true });
    m = await loadModel(join(dir, 'm'));
    zero = await loadModel(join(dir, 'z'));
  });
  afterAll(() => {
    m.model.dispose();
    zero.model.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const rules of ['relp', 'relp-ah'] as const) {
    it.skipIf(!torchAvailable())(`equals the PyTorch reference (--rules ${rules}, with a contrast token)`, async () => {
      const got = inputRelevance(m.model, ids, { target: 7, contrast: 11, rules });
      const ref = (await runTorchReference('lrp', ['--model', join(dir, 'm'), '--ids', ids.join(','), '--target', '7', '--contrast', '11', '--rules', rules])) as ReferenceLrpResult;
      const scale = Math.max(...ref.relevance.map(Math.abs));
      got.relevance.forEach((v, i) => expect(Math.abs(v - ref.relevance[i])).toBeLessThan(1e-3 * scale));
      expect(Math.abs(got.output - ref.output)).toBeLessThan(1e-4);
    });
  }

  it('conserves relevance on a zero-bias model with relp-ah, and not with plain gradients', () => {
    const r = inputRelevance(zero.model, ids, { target: 7, rules: 'relp-ah' });
    expect(Math.abs(r.total - r.output)).toBeLessThan(1e-3 * Math.max(1, Math.abs(r.output)));
    const plain = inputRelevance(zero.model, ids, { target: 7, rules: {} });
    expect(Math.abs(plain.total - plain.output)).toBeGreaterThan(1e-2 * Math.abs(plain.output));
  });

  it('defaults the target to the top prediction and frees its tensors', () => {
    const before = tf.memory().numTensors;
    const r = inputRelevance(m.model, ids);
    const top = tf.tidy(() => tf.argMax(tf.reshape(m.model.forward([ids], { lastPositionOnly: true }), [-1])).dataSync()[0]);
    expect(r.target).toBe(top);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('renders a heat line with one coloured span per token', () => {
    const line = heatLine(['a', 'b', 'c'], [1, -0.5, 0]);
    expect(line.match(/\x1b\[48;2;/g)).toHaveLength(3);
    expect(line).toContain('48;2;255;0;0'); // the largest positive token is fully red
  });
});
