import { describe, expect, it } from 'vitest';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { erf, geluExact, naiveGpt2, type NaiveActivation } from './naive-gpt2.ts';
import { TINY_CONFIG } from './tmp-model.ts';

const cfg = TINY_CONFIG;
const sd = randomStateDict(cfg, { seed: 9, std: 0.3, biasStd: 0.2 });
const tokens = [3, 17, 42, 8, 0, 49];

describe('erf', () => {
  it('matches tabulated values to 1e-15', () => {
    const table: [number, number][] = [
      [0, 0],
      [1e-3, 0.0011283787909692363],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [-1.5, -0.9661051464753108],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [5, 0.9999999999984626],
    ];
    for (const [x, want] of table) expect(Math.abs(erf(x) - want), `erf(${x})`).toBeLessThan(1e-15);
    expect(geluExact(1)).toBeCloseTo(0.8413447460685429, 14); // x·Φ(x) at 1
  });
});

describe('naiveGpt2', () => {
  it('records every hook point with TransformerLens shapes', () => {
    const P = tokens.length;
    const { cache, logits } = naiveGpt2(cfg, sd, tokens, { record: true });
    expect(logits).toHaveLength(P);
    expect(logits[0]).toHaveLength(cfg.dVocab);
    const shapes: Record<string, number[]> = {
      hook_embed: [P, 8],
      hook_pos_embed: [P, 8],
      'blocks.1.hook_resid_pre': [P, 8],
      'blocks.1.ln1.hook_scale': [P, 1],
      'blocks.1.ln1.hook_normalized': [P, 8],
      'blocks.1.attn.hook_q': [P, 2, 4],
      'blocks.1.attn.hook_k': [P, 2, 4],
      'blocks.1.attn.hook_v': [P, 2, 4],
      'blocks.1.attn.hook_attn_scores': [2, P, P],
      'blocks.1.attn.hook_pattern': [2, P, P],
      'blocks.1.attn.hook_z': [P, 2, 4],
      'blocks.1.attn.hook_result': [P, 2, 8],
      'blocks.1.hook_attn_out': [P, 8],
      'blocks.1.hook_resid_mid': [P, 8],
      'blocks.1.hook_mlp_in': [P, 8],
      'blocks.1.ln2.hook_normalized': [P, 8],
      'blocks.1.mlp.hook_pre': [P, 32],
      'blocks.1.mlp.hook_post': [P, 32],
      'blocks.1.hook_mlp_out': [P, 8],
      'blocks.1.hook_resid_post': [P, 8],
      'ln_final.hook_scale': [P, 1],
      'ln_final.hook_normalized': [P, 8],
    };
    for (const [name, shape] of Object.entries(shapes)) expect(cache.get(name)?.shape, name).toEqual(shape);
    expect(cache.size).toBe(2 + cfg.nLayers * 19 + 2); // hook_mlp_in included
    const only = naiveGpt2(cfg, sd, tokens, { record: ['blocks.0.attn.hook_z'] }).cache;
    expect([...only.keys()]).toEqual(['blocks.0.attn.hook_z']);
  });

  it('follows the TransformerLens LayerNorm convention and a causal, normalised pattern', () => {
    const { cache } = naiveGpt2(cfg, sd, tokens, { record: true });
    const x = cache.get('blocks.0.hook_resid_mid')!.data;
    const scale = cache.get('blocks.0.ln2.hook_scale')!.data;
    const normed = cache.get('blocks.0.ln2.hook_normalized')!.data;
    const w = sd.get('h.0.ln_2.weight')!.data;
    const b = sd.get('h.0.ln_2.bias')!.data;
    const D = cfg.dModel;
    for (let p = 0; p < tokens.length; p++) {
      const row = Array.from(x.subarray(p * D, (p + 1) * D));
      const mean = row.reduce((a, c) => a + c, 0) / D;
      const variance = row.reduce((a, c) => a + (c - mean) ** 2, 0) / D;
      expect(scale[p]).toBeCloseTo(Math.sqrt(variance + cfg.eps), 14);
      for (let i = 0; i < D; i++) expect(normed[p * D + i]).toBeCloseTo(((row[i] - mean) / Math.sqrt(variance + cfg.eps)) * w[i] + b[i], 13);
    }
    const pat = cache.get('blocks.1.attn.hook_pattern')!.data;
    const P = tokens.length;
    for (let h = 0; h < cfg.nHeads; h++) {
      for (let q = 0; q < P; q++) {
        let sum = 0;
        for (let k = 0; k < P; k++) {
          const a = pat[(h * P + q) * P + k];
          if (k > q) expect(a).toBe(0);
          sum += a;
        }
        expect(sum).toBeCloseTo(1, 14);
      }
    }
  });

  it('is causal: later tokens do not change earlier logits', () => {
    const a = naiveGpt2(cfg, sd, tokens).logits;
    const b = naiveGpt2(cfg, sd, [...tokens.slice(0, 3), 1, 2, 3]).logits;
    for (let p = 0; p < 3; p++) expect(b[p]).toEqual(a[p]);
    expect(b[3]).not.toEqual(a[3]);
  });

  it('hooks can patch activations', () => {
    const clean = [5, 6, 7, 8, 9, 10];
    const corrupt = [5, 6, 11, 8, 9, 10];
    const cleanRun = naiveGpt2(cfg, sd, clean, { record: true });
    const corruptRun = naiveGpt2(cfg, sd, corrupt);
    // A hook returning nothing (or an identical copy) leaves the run unchanged.
    const same = naiveGpt2(cfg, sd, corrupt, { hook: (_n, v) => v }).logits;
    expect(same).toEqual(corruptRun.logits);
    // Patching the whole residual stream before block 1 reproduces the clean run exactly.
    const patched = naiveGpt2(cfg, sd, corrupt, {
      hook: (name) => (name === 'blocks.1.hook_resid_pre' ? cleanRun.cache.get(name) : undefined),
    }).logits;
    expect(patched).toEqual(cleanRun.logits);
    // Patching a per-head result changes the output through attn_out.
    const seen: string[] = [];
    const headPatched = naiveGpt2(cfg, sd, corrupt, {
      record: ['blocks.0.hook_attn_out'],
      hook: (name, v): NaiveActivation | void => {
        seen.push(name);
        if (name !== 'blocks.0.attn.hook_result') return;
        return { shape: v.shape, data: new Float64Array(v.data.length) };
      },
    });
    const bO = sd.get('h.0.attn.c_proj.bias')!.data;
    const attnOut = headPatched.cache.get('blocks.0.hook_attn_out')!.data;
    for (let i = 0; i < attnOut.length; i++) expect(attnOut[i]).toBeCloseTo(bO[i % cfg.dModel], 6);
    expect(seen[0]).toBe('hook_embed');
    expect(seen).toContain('ln_final.hook_normalized');
    expect(() =>
      naiveGpt2(cfg, sd, corrupt, { hook: (name) => (name === 'blocks.0.attn.hook_z' ? { shape: [1], data: new Float64Array(1) } : undefined) }),
    ).toThrow(/hook for "blocks\.0\.attn\.hook_z" returned shape \[1\]/);
  });

  it('rejects out-of-range tokens and sequences longer than nCtx', () => {
    expect(() => naiveGpt2(cfg, sd, [50])).toThrow(/token 50 at position 0 is out of range/);
    expect(() => naiveGpt2(cfg, sd, new Array(17).fill(0))).toThrow(/17 tokens exceed nCtx 16/);
  });
});
