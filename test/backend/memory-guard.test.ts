/**
 * Memory guard: refuses runs that would overflow the wasm heap, names the batch size to lower to,
 * and its estimate tracks the measured peak of live wasm buffers.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { estimateBytes, guardMemory, maxBatchUnderLimit, WASM_HEAP_LIMIT_BYTES } from '../../src/backend/memory-guard.ts';
import type { BaseConfig } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { canonicalShapes } from '../../src/models/canonical.ts';
import { configFromHF, resolveConfig, type ConfigInput } from '../../src/models/config.ts';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { wasmPeakBytesDuring } from '../../src/backend/wasm-peak.ts';

const GPT2_SMALL: BaseConfig = { nLayers: 12, nHeads: 12, dModel: 768, dHead: 64, dMlp: 3072, nCtx: 1024, dVocab: 50257, eps: 1e-5, act: 'gelu_new' };

function tiny(over: Partial<BaseConfig> = {}): BaseConfig {
  const c: BaseConfig = { nLayers: 2, nHeads: 4, dModel: 32, dHead: 8, dMlp: 128, nCtx: 64, dVocab: 50, eps: 1e-5, act: 'gelu_new', ...over };
  c.dHead = c.dModel / c.nHeads;
  return c;
}

describe('estimateBytes / maxBatchUnderLimit', () => {
  it('with no tokens the estimate is the weights plus the forward copies (counted from canonicalShapes)', () => {
    for (const cfg of [GPT2_SMALL, tiny()]) {
      let n = 0;
      for (const s of canonicalShapes(resolveConfig(cfg)).values()) n += s.reduce((a, b) => a * b, 1);
      n += cfg.dVocab * cfg.dModel; // W_Eᵀ kept for inference
      n += cfg.nLayers * (cfg.dModel + 1) * 3 * cfg.dModel; // the fused q|k|v matrix and bias of each block
      expect(estimateBytes(cfg, { batch: 0, pos: 0 })).toBe(4 * n);
    }
  });

  it('grows with batch, positions, backward and cached activations', () => {
    const base = estimateBytes(GPT2_SMALL, { batch: 4, pos: 16 });
    expect(estimateBytes(GPT2_SMALL, { batch: 8, pos: 16 })).toBeGreaterThan(base);
    expect(estimateBytes(GPT2_SMALL, { batch: 4, pos: 32 })).toBeGreaterThan(base);
    expect(estimateBytes(GPT2_SMALL, { batch: 4, pos: 16, backward: true })).toBeGreaterThan(base);
    expect(estimateBytes(GPT2_SMALL, { batch: 4, pos: 16, cachedResiduals: 10 })).toBe(base + 4 * 10 * 4 * 16 * 768);
  });

  it('maxBatchUnderLimit is the largest batch whose estimate fits', () => {
    for (const w of [
      { pos: 16 },
      { pos: 64, backward: true },
      { pos: 128, backward: true, cachedResiduals: 50 },
    ]) {
      const m = maxBatchUnderLimit(GPT2_SMALL, w);
      expect(m).toBeGreaterThan(0);
      expect(estimateBytes(GPT2_SMALL, { ...w, batch: m })).toBeLessThanOrEqual(WASM_HEAP_LIMIT_BYTES);
      expect(estimateBytes(GPT2_SMALL, { ...w, batch: m + 1 })).toBeGreaterThan(WASM_HEAP_LIMIT_BYTES);
    }
    // A custom limit below the weights alone: nothing fits.
    expect(maxBatchUnderLimit(GPT2_SMALL, { pos: 16 }, 1e6)).toBe(0);
  });
});

describe('guardMemory', () => {
  it('throws for GPT-2 small with a huge batch on wasm and names the batch size to lower to', () => {
    const w = { batch: 512, pos: 64, backward: true };
    const ok = maxBatchUnderLimit(GPT2_SMALL, w);
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThan(512);
    let msg = '';
    try {
      guardMemory(GPT2_SMALL, w, 'attribution patching', 'wasm');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('attribution patching');
    expect(msg).toContain(`from 512 to at most ${ok}`);
    expect(msg).toContain(`--batch ${ok}`);
  });

  it('says when even batch 1 does not fit', () => {
    expect(() => guardMemory(GPT2_SMALL, { batch: 4, pos: 1024, backward: true, cachedResiduals: 2000 }, 'x', 'wasm')).toThrow(/at most 0 sequences per forward \(even batch 1 does not fit/);
  });

  it('passes small runs (GPT-2 small, batch 8 × 16 tokens, forward and backward; tiny models)', () => {
    expect(() => guardMemory(GPT2_SMALL, { batch: 8, pos: 16 }, 'x', 'wasm')).not.toThrow();
    expect(() => guardMemory(GPT2_SMALL, { batch: 8, pos: 16, backward: true, cachedResiduals: 40 }, 'x', 'wasm')).not.toThrow();
    expect(() => guardMemory(tiny(), { batch: 64, pos: 64, backward: true }, 'x', 'wasm')).not.toThrow();
  });

  it('is a no-op on backends without the 4 GB heap', () => {
    expect(() => guardMemory(GPT2_SMALL, { batch: 100000, pos: 1024, backward: true }, 'x', 'tensorflow')).not.toThrow();
    expect(() => guardMemory(GPT2_SMALL, { batch: 100000, pos: 1024, backward: true }, 'x', 'cpu')).not.toThrow();
  });

  it.runIf(tf.getBackend() === 'wasm')('the model refuses an oversized forward before allocating anything', () => {
    const cfg = tiny({ nCtx: 64 });
    const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 3 }));
    const row = Array.from({ length: 64 }, (_, i) => i % cfg.dVocab);
    const huge = new Array<number[]>(400_000).fill(row); // only the batch size is read before the guard
    const before = tf.memory().numTensors;
    expect(() => model.forward(huge)).toThrow(/Lower the batch size from 400000 to at most \d+/);
    expect(() => model.runWithCacheAndGrads(huge, (lg) => tf.sum(lg))).toThrow(/Lower the batch size from 400000/);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

/**
 * Peak bytes of live wasm buffers during `fn` (above what was live at the start). We wrap the wasm
 * backend's `move` (allocation) and `disposeData` (free); engine byte counts would count a
 * reshape's shared buffer twice.
 */
function wasmPeakBytes(fn: () => void): number {
  return wasmPeakBytesDuring(fn).peakBytes;
}

describe.runIf(tf.getBackend() === 'wasm')('estimate vs measured wasm heap', () => {
  // Llama-shaped: gated MLP, RoPE, GQA (8 query / 2 kv heads), untied unembedding.
  const llama = configFromHF({ model_type: 'llama', num_hidden_layers: 2, num_attention_heads: 8, num_key_value_heads: 2, hidden_size: 64, intermediate_size: 176, max_position_embeddings: 64, vocab_size: 200 });
  const neox = configFromHF({ model_type: 'gpt_neox', num_hidden_layers: 3, num_attention_heads: 4, hidden_size: 64, intermediate_size: 256, max_position_embeddings: 64, vocab_size: 300, rotary_pct: 0.25 });
  const cases: Array<{ cfg: ConfigInput; batch: number; pos: number }> = [
    { cfg: llama, batch: 4, pos: 32 },
    { cfg: neox, batch: 4, pos: 32 },
    { cfg: { ...llama, nKvHeads: 8 }, batch: 4, pos: 64 },
    { cfg: { ...llama, dMlp: 512 }, batch: 2, pos: 48 },
    { cfg: tiny({ nLayers: 1, dModel: 64, dMlp: 256, dVocab: 200 }), batch: 4, pos: 32 },
    { cfg: tiny({ nLayers: 4, dModel: 64, dMlp: 256, dVocab: 200 }), batch: 4, pos: 32 },
    { cfg: tiny({ nLayers: 2, nHeads: 8, dModel: 64, dMlp: 100, dVocab: 200 }), batch: 4, pos: 32 },
    { cfg: tiny({ nLayers: 2, nHeads: 2, dModel: 64, dMlp: 256, dVocab: 200 }), batch: 4, pos: 64 },
    { cfg: tiny({ nLayers: 2, dModel: 32, dMlp: 128, dVocab: 3000 }), batch: 2, pos: 16 },
    { cfg: tiny({ nLayers: 6, dModel: 32, dMlp: 128 }), batch: 2, pos: 48 },
  ];
  for (const { cfg, batch, pos } of cases) {
    it(`${resolveConfig(cfg).modelType} L=${cfg.nLayers} h=${cfg.nHeads} kv=${resolveConfig(cfg).nKvHeads} d=${cfg.dModel} mlp=${cfg.dMlp} V=${cfg.dVocab}, ${batch}×${pos}: measured ≤ estimate ≤ 1.5× measured`, () => {
      const tokens = Array.from({ length: batch }, (_, b) => Array.from({ length: pos }, (_, i) => (i * 7 + b) % cfg.dVocab));
      const names = ['blocks.0.hook_resid_pre', `blocks.${cfg.nLayers - 1}.hook_resid_post`];
      // Building the model is inside the forward measurement: the estimate includes the weights.
      let model: HookedTransformer | undefined;
      const fwd = wasmPeakBytes(() => {
        model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 1 }));
        model.forward(tokens).dispose();
      });
      const m = model as HookedTransformer;
      const bwdAboveWeights = wasmPeakBytes(() => {
        const r = m.runWithCacheAndGrads(tokens, (lg) => tf.sum(lg), { names });
        tf.dispose([r.logits, r.value, ...Object.values(r.cache), ...Object.values(r.grads)]);
      });
      m.dispose();
      // The backward was measured above the live weights (their size is checked against expectedShapes above).
      const bwd = bwdAboveWeights + estimateBytes(cfg, { batch: 0, pos: 0 });
      const estF = estimateBytes(cfg, { batch, pos });
      // 5 copies per probed activation: the cache clone, the zero probe, the add, its gradient and the returned gradient.
      const estB = estimateBytes(cfg, { batch, pos, backward: true, cachedResiduals: 5 * names.length });
      expect(estF).toBeGreaterThanOrEqual(fwd);
      expect(estF).toBeLessThanOrEqual(1.5 * fwd);
      expect(estB).toBeGreaterThanOrEqual(bwd);
      expect(estB).toBeLessThanOrEqual(1.5 * bwd);
    });
  }
});
