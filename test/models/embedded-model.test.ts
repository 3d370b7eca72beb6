/**
 * The shipped embedded IOI model: HF GPT-2 layout, size, and IOI quality on held-out
 * name/template combinations (the Wang-style evaluation templates are held out of training).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EMBEDDED_MODEL_DIR, loadModelWithTokenizer, type LoadedModel } from '../../src/hooks/load-model.ts';
import { readSafetensorsHeader } from '../../src/io/safetensors.ts';
import { expectedShapes } from '../../src/models/state-dict.ts';
import { generateIoi } from '../../src/tasks/ioi.ts';
import type { Tokenizer } from '../../src/tokenizer.ts';

describe('embedded IOI model (models/ioi-toy)', () => {
  let m: LoadedModel & { tokenizer: Tokenizer };
  beforeAll(async () => {
    m = await loadModelWithTokenizer();
  });
  afterAll(() => m.model.dispose());

  it('is an HF GPT-2 folder: config model_type gpt2, F32 safetensors with standard names, ≤ 8 MB', () => {
    const cfg = JSON.parse(readFileSync(join(EMBEDDED_MODEL_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.model_type).toBe('gpt2');
    const file = join(EMBEDDED_MODEL_DIR, 'model.safetensors');
    expect(statSync(file).size).toBeLessThanOrEqual(8 * 1024 * 1024);
    const header = readSafetensorsHeader(file);
    const names = [...header.entries.keys()];
    for (const name of expectedShapes(m.model.cfg).keys()) expect(names).toContain(name);
    for (const e of header.entries.values()) expect(e.dtype).toBe("F32");
  });

  it('does IOI on held-out prompts: accuracy ≥ 0.95, mean LD ≥ 3, ABC-corrupted LD near 0', () => {
    const pairs = generateIoi(m.tokenizer, { n: 160, seed: 20261124, corruption: 'abc' });
    const ld = (ids: number[], a: number, w: number) =>
      tf.tidy(() => {
        const lg = m.model.forward([ids], { lastPositionOnly: true }).dataSync();
        return lg[a] - lg[w];
      });
    const clean = pairs.map((p) => ld(p.cleanIds, p.answerId, p.wrongId));
    const abc = pairs.map((p) => ld(p.corruptIds, p.answerId, p.wrongId));
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    const acc = clean.filter((x) => x > 0).length / clean.length;
    expect(acc).toBeGreaterThanOrEqual(0.95);
    expect(mean(clean)).toBeGreaterThanOrEqual(3);
    expect(Math.abs(mean(abc))).toBeLessThan(0.5);
  });
});
