/**
 * naive-hf.ts against what can be checked without PyTorch: the project's older naive GPT-2
 * (a separate implementation), defining identities (causality, a perturbation equals a hook
 * replacement, GQA = MHA with duplicated kv heads, rotary_pct 0 ignores position in attention
 * scores), and clear errors. Its agreement with the PyTorch reference is in
 * test/reference/hf_reference.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeTinyGPT2 } from '../fixtures/reference/tiny-gpt2.ts';
import { HF_MODEL_TYPES, writeHFCheckpoint } from './hf-checkpoint.ts';
import { finiteDifferenceGradient, loadNaiveHF, naiveHF, parseHFConfig } from './naive-hf.ts';
import { naiveGpt2 } from './naive-gpt2.ts';

const dir = mkdtempSync(join(tmpdir(), 'relp-naive-hf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const IDS = [1, 5, 7, 3, 49, 0, 12, 8];
const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((r, i) => r.map((v, j) => Math.abs(v - b[i][j]))));

describe('naive-hf', () => {
  it('gpt2 equals the separate naive GPT-2 (naive-gpt2.ts) on the same checkpoint, hooks included', () => {
    const sd = writeTinyGPT2(join(dir, 'gpt2'), { seed: 7, nEmbd: 16, nHead: 2, prefix: true });
    const m = loadNaiveHF(join(dir, 'gpt2'));
    const cfg = { nLayers: 2, nHeads: 2, dModel: 16, dHead: 8, dMlp: 64, nCtx: 16, dVocab: 50, eps: 1e-5, act: 'gelu_new' as const };
    const old = naiveGpt2(cfg, sd as never, IDS, { record: true });
    const now = naiveHF(m, IDS, { record: true });
    expect(maxDiff(now.logits, old.logits)).toBeLessThan(1e-12);
    for (const n of ['blocks.1.hook_resid_mid', 'blocks.0.attn.hook_pattern', 'blocks.1.ln2.hook_scale', 'blocks.1.mlp.hook_post']) {
      const a = now.cache.get(n)!.data, b = old.cache.get(n)!.data;
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]))), n).toBeLessThan(1e-12);
    }
  });

  it.each(HF_MODEL_TYPES)('%s: causal; a perturbation equals the same hook replacement; FD gradient is linear in the metric', (t) => {
    const m = loadNaiveHF(writeHFCheckpoint(join(dir, t), { modelType: t, seed: 2 }).dir);
    const full = naiveHF(m, IDS).logits;
    expect(maxDiff([full[3]], [naiveHF(m, IDS.slice(0, 4)).logits[3]])).toBeLessThan(1e-13);
    const name = 'blocks.1.hook_resid_pre';
    const delta = new Float64Array(IDS.length * 16).map((_, i) => Math.sin(i) * 0.1);
    const viaPerturb = naiveHF(m, IDS, { perturb: { [name]: delta } }).logits;
    const viaHook = naiveHF(m, IDS, { hook: (n, a) => (n === name ? { shape: a.shape, data: a.data.map((v, i) => v + delta[i]) } : undefined) }).logits;
    expect(viaPerturb).toEqual(viaHook);
    expect(maxDiff(viaPerturb, full)).toBeGreaterThan(1e-3);
    const f = (lg: number[][][]) => lg[0][7][3];
    const g = (lg: number[][][]) => lg[0][7][3] - 2 * lg[0][7][9];
    const h = (lg: number[][][]) => lg[0][7][9];
    const [a] = finiteDifferenceGradient(m, [IDS], name, f);
    const [b] = finiteDifferenceGradient(m, [IDS], name, g);
    const [c] = finiteDifferenceGradient(m, [IDS], name, h);
    b.forEach((v, i) => expect(v).toBeCloseTo(a[i] - 2 * c[i], 8));
    expect(a.slice(0, 16).some((v) => v !== 0)).toBe(true);
  });

  it('GQA query head h reads kv head floor(h / (H / H_kv)); gemma2 head_dim need not be d/H', () => {
    const m = loadNaiveHF(writeHFCheckpoint(join(dir, 'gqa'), { modelType: 'gemma2', nHeads: 4, nKvHeads: 2, seed: 3 }).dir);
    const { cache } = naiveHF(m, IDS, { record: ['blocks.0.attn.hook_rot_q', 'blocks.0.attn.hook_rot_k', 'blocks.0.attn.hook_attn_scores'] });
    const q = cache.get('blocks.0.attn.hook_rot_q')!, k = cache.get('blocks.0.attn.hook_rot_k')!, s = cache.get('blocks.0.attn.hook_attn_scores')!;
    expect(q.shape).toEqual([8, 4, 8]);
    expect(k.shape).toEqual([8, 2, 8]);
    const [qi, ki, h] = [5, 3, 3]; // head 3 -> kv head 1
    let dot = 0;
    for (let j = 0; j < 8; j++) dot += q.data[(qi * 4 + h) * 8 + j] * k.data[(ki * 2 + 1) * 8 + j];
    expect(s.data[(h * 8 + qi) * 8 + ki]).toBeCloseTo(2 * Math.tanh((dot / Math.sqrt(6)) / 2), 12);
  });

  it('rejects bad configs and inputs by name', () => {
    expect(() => parseHFConfig({ model_type: 'bert' })).toThrow(/unsupported model_type "bert"/);
    expect(() => parseHFConfig({ model_type: 'llama', hidden_size: 16, num_attention_heads: 4, num_key_value_heads: 3, num_hidden_layers: 1 }))
      .toThrow(/num_key_value_heads 3 does not divide num_attention_heads 4/);
    expect(() => parseHFConfig({ model_type: 'llama', hidden_size: 16, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 8,
      vocab_size: 5, max_position_embeddings: 8, rope_scaling: { type: 'llama3' } })).toThrow(/rope_scaling/);
    const m = loadNaiveHF(join(dir, 'llama'));
    expect(() => naiveHF(m, [1, 50])).toThrow(/token 50 at position 1 is outside \[0, 50\)/);
    expect(() => naiveHF(m, [])).toThrow(/empty token list/);
    expect(() => loadNaiveHF(join(dir, 'nope'))).toThrow(/no config\.json/);
  });
});
