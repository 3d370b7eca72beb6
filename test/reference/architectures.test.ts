/**
 * Issue 13 "Must show": for every architecture, on a random checkpoint in HF layout with HF
 * config keys, `relp logits --json` and `relp patch` (activation, atp, relp on resid_pre,
 * attn_out, mlp_out, through a JSONL dataset) equal the independent PyTorch reference
 * (hf_reference.py) to 1e-3 relative.
 *
 * The checkpoints carry a small word-level tokenizer (`w2 w17 ...`, one token per word) so the
 * JSONL texts pin the token ids exactly. Shapes are chosen so that each architecture's quirks
 * matter: partial rotary and parallel residual (gpt_neox), GQA (llama, qwen2, mistral, gemma2),
 * q/k/v biases (qwen2), untied lm_head (llama, mistral), a sliding window shorter than the
 * prompts (mistral on every layer, gemma2 on even layers), soft-caps, head_dim ≠ d/H and
 * query_pre_attn_scalar ≠ head_dim (gemma2).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HF_MODEL_TYPES, writeHFCheckpoint, type HFCheckpointOptions, type HFModelType } from '../helpers/hf-checkpoint.ts';
import { runHFReferenceBatch, torchAvailable, type ReferenceLogitsResult, type ReferencePatchResult } from '../helpers/hf-reference.ts';
import { runCli } from '../cli/run-cli.ts';
import { writeWordTokenizer } from '../helpers/word-tokenizer.ts';

const VOCAB = 64;
const COMPONENTS = ['resid_pre', 'attn_out', 'mlp_out'] as const;
const METHODS = ['activation', 'atp', 'relp'] as const;

/** Per-architecture shape (vocab and positions are shared). */
const SHAPES: Record<HFModelType, Omit<HFCheckpointOptions, 'modelType'>> = {
  gpt2: { dModel: 32, nHeads: 4, std: 0.2 },
  gpt_neox: { dModel: 32, nHeads: 4, rotaryPct: 0.25, std: 0.2 },
  llama: { dModel: 32, nHeads: 4, nKvHeads: 2, dMlp: 48, std: 0.2 },
  qwen2: { dModel: 32, nHeads: 4, nKvHeads: 2, dMlp: 48, std: 0.2 },
  mistral: { dModel: 32, nHeads: 4, nKvHeads: 1, dMlp: 48, slidingWindow: 4, std: 0.2 },
  gemma2: { dModel: 32, nHeads: 4, nKvHeads: 2, headDim: 16, dMlp: 48, queryPreAttnScalar: 12, slidingWindow: 4, std: 0.2 },
};

const w = (ids: number[]) => ids.map((i) => `w${i}`).join(' ');
// Clean and corrupt prompts (9 words) differ at positions 2 and 6; the window (4) is shorter than the prompt.
const PAIRS = [
  { clean: [3, 11, 7, 20, 11, 5, 9, 2, 40], corrupt: [3, 11, 30, 20, 11, 5, 8, 2, 40], answer: 7, wrong: 20 },
  { clean: [8, 2, 9, 14, 2, 40, 6, 17, 33], corrupt: [8, 2, 12, 14, 2, 40, 6, 17, 33], answer: 9, wrong: 14 },
  { clean: [15, 45, 6, 28, 45, 17, 4, 3, 50], corrupt: [15, 45, 6, 28, 45, 17, 21, 3, 50], answer: 6, wrong: 28 },
];
const TEXT = w([5, 9, 13, 2, 44, 31, 7, 7, 60, 18]);

/** max |a − b| ≤ tol · max |b| over a grid (relative to the grid's scale). */
function expectClose(got: number[][], want: number[][], tol: number, what: string): void {
  const g = got.flat();
  const wv = want.flat();
  expect(g.length, what).toBe(wv.length);
  const scale = Math.max(1e-6, ...wv.map(Math.abs));
  const err = Math.max(...g.map((v, i) => Math.abs(v - wv[i])));
  expect(err / scale, `${what}: max abs err ${err} vs scale ${scale}`).toBeLessThan(tol);
}

describe.skipIf(!torchAvailable())('every architecture through the CLI vs the PyTorch reference', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'relp-arch-'));
    writeFileSync(join(dir, 'data.jsonl'), PAIRS.map((p) =>
      JSON.stringify({ clean: w(p.clean), corrupt: w(p.corrupt), answer: ` w${p.answer}`, wrong: ` w${p.wrong}` })).join('\n') + '\n');
    for (const t of HF_MODEL_TYPES) {
      const m = join(dir, t);
      writeHFCheckpoint(m, { modelType: t, seed: 31, vocab: VOCAB, maxPositions: 32, nLayers: 2, ...SHAPES[t] });
      writeWordTokenizer(m, VOCAB);
    }
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each(HF_MODEL_TYPES)('%s: relp logits --json and relp patch (activation, atp, relp) equal PyTorch to 1e-3', async (t) => {
    const model = join(dir, t);
    const lg = await runCli(['logits', '--model', model, '--text', TEXT, '--json']);
    expect(lg.code, lg.stderr).toBe(0);
    const got = JSON.parse(lg.stdout.trim().split('\n').at(-1)!) as { ids: number[]; logits: number[] };
    expect(got.ids).toEqual([5, 9, 13, 2, 44, 31, 7, 7, 60, 18]); // no BOS: this tokenizer's template adds none

    const out = join(dir, `run-${t}`);
    const r = await runCli(['patch', '--model', model, '--dataset', join(dir, 'data.jsonl'), '--methods', METHODS.join(','),
      '--rules', 'relp', '--components', COMPONENTS.join(','), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as {
      dataset: { pairs: { clean_ids: number[]; corrupt_ids: number[]; answer_id: number; wrong_id: number }[] };
      metric: { clean: number; corrupt: number };
      scores: Record<string, Record<string, { values: number[][] }>>;
    };
    expect(run.dataset.pairs.map((p) => p.clean_ids)).toEqual(PAIRS.map((p) => p.clean));
    expect(run.dataset.pairs.map((p) => p.corrupt_ids)).toEqual(PAIRS.map((p) => p.corrupt));
    const pairsFile = join(dir, `pairs-${t}.json`);
    writeFileSync(pairsFile, JSON.stringify({ pairs: run.dataset.pairs }));

    const ref = await runHFReferenceBatch({
      logits: ['logits', '--model', model, '--ids', got.ids.join(',')],
      patch: ['patch', '--model', model, '--pairs', pairsFile, '--methods', METHODS.join(','), '--rules', 'relp',
        '--components', COMPONENTS.join(',')],
    });
    for (const k of ['logits', 'patch']) expect((ref[k] as { error?: string }).error, k).toBeUndefined();
    const refLogits = (ref.logits as ReferenceLogitsResult).logits as number[];
    expect(Math.max(...refLogits.map(Math.abs))).toBeGreaterThan(0.3);
    expectClose([got.logits], [refLogits], 1e-3, `${t} logits`);

    const rp = ref.patch as ReferencePatchResult;
    expect(Math.abs(run.metric.clean - rp.metric.clean)).toBeLessThan(1e-3 * Math.max(1, Math.abs(rp.metric.clean)));
    expect(Math.abs(run.metric.corrupt - rp.metric.corrupt)).toBeLessThan(1e-3 * Math.max(1, Math.abs(rp.metric.corrupt)));
    for (const method of METHODS) {
      for (const comp of COMPONENTS) {
        const gotGrid = run.scores[method]?.[comp]?.values;
        expect(gotGrid, `${method}/${comp} missing from run.json`).toBeDefined();
        expectClose(gotGrid!, rp.scores[method][comp], 1e-3, `${t} ${method}/${comp}`);
      }
    }
  }, 600_000);
});
