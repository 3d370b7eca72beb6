/**
 * Every architecture through the one model layer, judged against independent computations:
 * - random HF checkpoints (test/helpers/hf-checkpoint.ts: native names, HF config keys) load
 *   through the converters, and logits plus every shared hook activation equal the float64 naive
 *   HF forward (test/helpers/naive-hf.ts);
 * - gradients at hooks equal central finite differences of that reference;
 * - toStateDict writes the checkpoint's own tensors back, bit for bit;
 * - bad checkpoints give named errors.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { configFromHF } from '../../src/models/config.ts';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { disposeCache } from '../../src/hooks/activation-cache.ts';
import { writeHFCheckpoint, type HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { finiteDifferenceGradient, loadNaiveHF, naiveHF, type NaiveHFModel } from '../helpers/naive-hf.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function checkpoint(o: HFCheckpointOptions): string {
  const dir = mkdtempSync(join(tmpdir(), `relp-arch-${o.modelType}-`));
  dirs.push(dir);
  writeHFCheckpoint(dir, o);
  return dir;
}

/** Max |a − b| / (atol + rtol·|b|); ≤ 1 means within tolerance. Skips non-finite b. */
function worst(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  expect(a.length).toBe(b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(b[i])) continue;
    w = Math.max(w, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  }
  return w;
}

function row(t: tf.Tensor, b: number): Float32Array {
  const n = t.size / t.shape[0];
  return (t.dataSync() as Float32Array).slice(b * n, (b + 1) * n);
}

/** The architectures and variants under test. */
const CASES: { name: string; opts: HFCheckpointOptions }[] = [
  { name: 'gpt2', opts: { modelType: 'gpt2', seed: 3, std: 0.2 } },
  { name: 'gpt2 untied lm_head', opts: { modelType: 'gpt2', seed: 4, std: 0.2, tieWordEmbeddings: false } },
  { name: 'gpt_neox (parallel, partial rotary)', opts: { modelType: 'gpt_neox', seed: 5, std: 0.2 } },
  { name: 'gpt_neox sequential', opts: { modelType: 'gpt_neox', seed: 6, std: 0.2, parallelResidual: false, rotaryPct: 1 } },
  { name: 'llama (GQA 4/2, untied)', opts: { modelType: 'llama', seed: 7, std: 0.2 } },
  { name: 'llama attention_bias, tied, head_dim', opts: { modelType: 'llama', seed: 8, std: 0.2, attentionBias: true, tieWordEmbeddings: true, headDim: 6, nKvHeads: 1 } },
  { name: 'qwen2 (q/k/v biases)', opts: { modelType: 'qwen2', seed: 9, std: 0.2 } },
  { name: 'mistral (sliding window 3)', opts: { modelType: 'mistral', seed: 10, std: 0.2, slidingWindow: 3 } },
  { name: 'gemma2 (post-norms, soft-caps, window on even layers)', opts: { modelType: 'gemma2', seed: 11, std: 0.2, slidingWindow: 3 } },
];

const TOKENS = [
  [3, 17, 5, 22, 9, 41, 8],
  [12, 1, 30, 7, 44, 2, 19],
];

interface Loaded {
  model: HookedTransformer;
  naive: NaiveHFModel;
  dir: string;
}

const loaded = new Map<string, Loaded>();
async function load(c: (typeof CASES)[number]): Promise<Loaded> {
  let l = loaded.get(c.name);
  if (!l) {
    const dir = checkpoint(c.opts);
    const ck = await loadCheckpoint(dir);
    l = { model: HookedTransformer.fromStateDict(ck.config, ck.stateDict), naive: loadNaiveHF(dir), dir };
    loaded.set(c.name, l);
  }
  return l;
}
afterAll(() => loaded.forEach((l) => l.model.dispose()));

describe.each(CASES)('$name', (c) => {
  it('logits and every hook shared with the float64 HF reference agree to 1e-4', async () => {
    const { model, naive } = await load(c);
    const names = model.hookNames();
    const { logits, cache } = model.runWithCache(TOKENS, { names });
    try {
      let compared = 0;
      for (let b = 0; b < TOKENS.length; b++) {
        const ref = naiveHF(naive, TOKENS[b], { record: true });
        expect(worst(row(logits, b), ref.logits.flat(), 1e-4, 1e-4), `logits batch ${b}`).toBeLessThanOrEqual(1);
        for (const n of names) {
          const r = ref.cache.get(n);
          if (!r) continue; // hooks the reference does not record (hook_mlp_in, hook_result)
          expect(cache[n].shape.slice(1), n).toEqual(r.shape);
          expect(worst(row(cache[n], b), r.data, 1e-4, 1e-4), `${n} batch ${b}`).toBeLessThanOrEqual(1);
          compared++;
        }
      }
      // Most hooks exist in both: the reference records TransformerLens names too.
      expect(compared).toBeGreaterThan(TOKENS.length * (names.length - 3 * model.cfg.nLayers));
    } finally {
      logits.dispose();
      disposeCache(cache);
    }
  });

  it('hook gradients equal central finite differences of the reference', async () => {
    const { model, naive } = await load(c);
    const P = TOKENS[0].length;
    const [ans, wrong] = [4, 9];
    // Logit difference at the last position, summed over the batch.
    const refMetric = (lg: number[][][]) => lg.reduce((s, l) => s + l[P - 1][ans] - l[P - 1][wrong], 0);
    const metric = (logits: tf.Tensor3D) =>
      tf.tidy(() => {
        const last = tf.squeeze(tf.slice(logits, [0, P - 1, 0], [-1, 1, -1]), [1]); // [b, vocab]
        return tf.sum(tf.sub(tf.slice(last, [0, ans], [-1, 1]), tf.slice(last, [0, wrong], [-1, 1]))) as tf.Scalar;
      });
    const L = model.cfg.nLayers;
    const names = [`blocks.0.hook_resid_pre`, `blocks.${L - 1}.attn.hook_v`, `blocks.0.mlp.hook_post`, `blocks.${L - 1}.ln2.hook_normalized`];
    if (model.cfg.positional === 'rotary') names.push(`blocks.${L - 1}.attn.hook_rot_k`);
    const r = model.runWithCacheAndGrads(TOKENS, metric, { names });
    try {
      for (const n of names) {
        const fd = finiteDifferenceGradient(naive, TOKENS, n, refMetric, 1e-4);
        for (let b = 0; b < TOKENS.length; b++) {
          expect(worst(row(r.grads[n], b), fd[b], 2e-4, 2e-3), `${n} batch ${b}`).toBeLessThanOrEqual(1);
        }
      }
    } finally {
      tf.dispose([r.logits, r.value]);
      disposeCache(r.cache, r.grads);
    }
  });

  it('toStateDict gives back the checkpoint tensors bit for bit (HF names)', async () => {
    const { model, dir } = await load(c);
    const ck = await loadCheckpoint(dir);
    const back = model.toStateDict();
    expect([...back.keys()].sort()).toEqual([...ck.stateDict.keys()].sort());
    for (const [n, t] of ck.stateDict) {
      expect(back.get(n)!.shape, n).toEqual(t.shape);
      expect(Buffer.from(back.get(n)!.data.buffer).equals(Buffer.from(t.data.buffer)), n).toBe(true);
    }
  });
});

describe('GQA', () => {
  it('with nKvHeads = nHeads equals the multi-head path exactly, and kv heads serve their group', async () => {
    // A GQA model (4 query heads, 2 kv heads) vs the same model with each kv head duplicated for
    // its 2 query heads (HF repeat_kv: head i reads kv head ⌊i/2⌋): an MHA model (nKvHeads = nHeads).
    const dir = checkpoint({ modelType: 'llama', seed: 21, std: 0.2, nKvHeads: 2 });
    const ck = await loadCheckpoint(dir);
    const gqa = HookedTransformer.fromStateDict(ck.config, ck.stateDict);
    const w = gqa.canonicalWeights();
    const dh = ck.config.dHead;
    const d = ck.config.dModel;
    for (let l = 0; l < ck.config.nLayers; l++) {
      for (const n of ['W_K', 'W_V']) {
        const t = w.get(`blocks.${l}.attn.${n}`)!; // [2, d, dh]
        const out = new Float32Array(4 * d * dh);
        for (let h = 0; h < 4; h++) out.set(t.data.subarray(Math.floor(h / 2) * d * dh, (Math.floor(h / 2) + 1) * d * dh), h * d * dh);
        w.set(`blocks.${l}.attn.${n}`, { shape: [4, d, dh], data: out });
      }
    }
    const mha = HookedTransformer.fromCanonical({ ...ck.config, nKvHeads: 4 }, w);
    const a = gqa.forward(TOKENS);
    const b = mha.forward(TOKENS);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    // And nKvHeads = nHeads through the GQA code path is the plain multi-head path (no repeat).
    const cfg4 = configFromHF({ ...JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), num_key_value_heads: 4 });
    expect(cfg4.nKvHeads).toBe(4);
    tf.dispose([a, b]);
    gqa.dispose();
    mha.dispose();
  });
});

describe('converter errors', () => {
  it('num_key_value_heads not dividing num_attention_heads is named', async () => {
    const dir = checkpoint({ modelType: 'llama', seed: 1 });
    const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...raw, num_key_value_heads: 3 }));
    await expect(loadCheckpoint(dir)).rejects.toThrow(/num_key_value_heads \(3\) does not divide num_attention_heads \(4\)/);
  });

  it('a missing tensor is named, a wrong shape names tensor and shapes, for each architecture', async () => {
    for (const modelType of ['gpt_neox', 'llama', 'gemma2'] as const) {
      const dir = checkpoint({ modelType, seed: 2 });
      const ck = await loadCheckpoint(dir);
      const [first, second] = [...ck.stateDict.keys()].filter((n) => n.includes('layers.1.'));
      const missing = new Map(ck.stateDict);
      missing.delete(first);
      expect(() => HookedTransformer.fromStateDict(ck.config, missing)).toThrow(new RegExp(`missing tensor "${first.replace(/\./g, '\\.')}"`));
      const bad = new Map(ck.stateDict);
      const t = bad.get(second)!;
      bad.set(second, { shape: [...t.shape, 1], data: t.data });
      expect(() => HookedTransformer.fromStateDict(ck.config, bad)).toThrow(new RegExp(`tensor "${second.replace(/\./g, '\\.')}" has shape \\[${[...t.shape, 1].join(', ')}\\], expected \\[${t.shape.join(', ')}\\]`));
    }
  });

  it('unknown model_type, rope_scaling and a tied head that differs are refused by name', async () => {
    expect(() => configFromHF({ model_type: 'falcon' })).toThrow(/model_type "falcon" is not supported \(supported: gpt2, gpt_neox, llama, qwen2, mistral, gemma2\)/);
    const dir = checkpoint({ modelType: 'llama', seed: 3 });
    const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(() => configFromHF({ ...raw, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(/rope_scaling .* is not supported/);
    expect(() => configFromHF({ ...raw, num_hidden_layers: undefined })).toThrow(/missing numeric field "num_hidden_layers"/);
    // Untied checkpoint declared tied: lm_head differs from embed_tokens.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...raw, tie_word_embeddings: true }));
    await expect(loadCheckpoint(dir)).rejects.toThrow(/"lm_head\.weight" differs from "model\.embed_tokens\.weight"/);
  });

  it('hook_resid_mid on parallel blocks says why it does not exist', async () => {
    const { model } = await load(CASES[2]);
    expect(() => model.forward(TOKENS, { hooks: [{ name: 'blocks.0.hook_resid_mid', fn: () => undefined }] })).toThrow(/parallel blocks .* no resid_mid; use blocks\.0\.hook_mlp_in/);
  });
});
