/**
 * RelP (and AtP) on z — per attention head — against the independent float64 PyTorch reference
 * (gpt2_reference.py `patch --components z`): score[l][h] = Σ_{b, pos, d_head} (z_clean − z_corrupt)
 * · ∂̃m/∂z at the corrupt run, with the reference's own LRP rules (LN, Identity, Half, AH).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeTinyGPT2 } from '../fixtures/reference/tiny-gpt2.ts';
import { runTorchReference, torchAvailable, type ReferencePatchResult } from '../helpers/torch-reference.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { ATP, attributionPatch, relpMethod } from '../../src/patching/attribution-patching.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import { randomPairs } from '../helpers/random-pairs.ts';
import { initBackend } from '../../src/backend.ts';

// Skips only where torch is missing and not required (RELP_REQUIRE_REFERENCE=1 makes it run and fail).
describe.skipIf(!torchAvailable() && process.env.RELP_REQUIRE_REFERENCE !== '1')('RelP on z against the PyTorch reference', () => {
  let dir: string;
  let model: HookedTransformer;
  const VOCAB = 61;
  const pairs = randomPairs(3, 7, 41, VOCAB);
  beforeAll(async () => {
    await initBackend();
    dir = mkdtempSync(join(tmpdir(), 'relp-z-'));
    writeTinyGPT2(join(dir, 'model'), { nLayer: 3, nHead: 4, nEmbd: 32, vocab: VOCAB, nPositions: 16, seed: 13, std: 0.3 });
    const ck = await loadCheckpoint(join(dir, 'model'));
    model = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
    writeFileSync(join(dir, 'pairs.json'), JSON.stringify({ pairs: pairs.map((p) => ({ clean_ids: p.cleanIds, corrupt_ids: p.corruptIds, answer_id: p.answerId, wrong_id: p.wrongId })) }));
  });
  afterAll(() => {
    model?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const rules of ['relp', 'relp-ah'] as const) {
    it(`per-head z scores of atp and relp (--rules ${rules}) equal the reference`, async () => {
      const ref = (await runTorchReference('patch', ['--model', join(dir, 'model'), '--pairs', join(dir, 'pairs.json'), '--methods', 'atp,relp', '--rules', rules, '--components', 'z'])) as ReferencePatchResult;
      const before = tf.memory().numTensors;
      const r = attributionPatch(model, toPatchingData(pairs), { components: 'z', methods: [ATP, relpMethod(rules)] });
      expect(tf.memory().numTensors).toBe(before);
      for (const m of ['atp', 'relp'] as const) {
        // attributionPatch reports baseline + estimate for normalised metrics (0 at the corrupt run).
        const got = (r.scores[m].z!.values as number[][]).flat();
        const want = ref.scores[m]!.z!.flat();
        expect(got).toHaveLength(3 * 4);
        const scale = Math.max(...want.map(Math.abs));
        expect(scale).toBeGreaterThan(1e-3); // a real comparison, not of zeros
        const err = Math.max(...got.map((v, i) => Math.abs(v - want[i]!)));
        expect(err / scale, `${m} (${rules}) z: max abs err ${err} vs scale ${scale}`).toBeLessThan(1e-4);
      }
      // The rules matter on z: relp differs from atp somewhere.
      const a = (r.scores.atp.z!.values as number[][]).flat();
      const b = (r.scores.relp.z!.values as number[][]).flat();
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-5);
    });
  }
});
