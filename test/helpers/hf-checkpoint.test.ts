/**
 * The random HF checkpoint writer: native names and shapes per model_type, the same values in
 * every dtype and shard layout, deterministic seeds, and the safetensors codec's rounding.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HF_MODEL_TYPES, writeHFCheckpoint, type HFModelType } from './hf-checkpoint.ts';
import { bf16BitsToNumber, f16BitsToNumber, f32ToBf16Bits, f32ToF16Bits, readSafetensorsFolder } from './hf-safetensors.ts';

const dir = mkdtempSync(join(tmpdir(), 'relp-hf-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Expected names and shapes of layer 0 plus the top-level tensors (defaults: d 16, V 50). */
const EXPECTED: Record<HFModelType, Record<string, number[]>> = {
  gpt2: { 'wte.weight': [50, 16], 'wpe.weight': [32, 16], 'h.0.attn.c_attn.weight': [16, 48], 'h.0.mlp.c_fc.weight': [16, 64], 'ln_f.bias': [16] },
  gpt_neox: {
    'gpt_neox.embed_in.weight': [50, 16], 'gpt_neox.layers.0.attention.query_key_value.weight': [48, 16],
    'gpt_neox.layers.0.attention.query_key_value.bias': [48], 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight': [64, 16],
    'gpt_neox.final_layer_norm.weight': [16], 'embed_out.weight': [50, 16],
  },
  llama: {
    'model.embed_tokens.weight': [50, 16], 'model.layers.0.self_attn.q_proj.weight': [16, 16],
    'model.layers.0.self_attn.k_proj.weight': [8, 16], 'model.layers.0.mlp.gate_proj.weight': [32, 16],
    'model.layers.0.mlp.down_proj.weight': [16, 32], 'model.norm.weight': [16], 'lm_head.weight': [50, 16],
  },
  qwen2: { 'model.layers.0.self_attn.q_proj.bias': [16], 'model.layers.0.self_attn.v_proj.bias': [8], 'model.norm.weight': [16] },
  mistral: { 'model.layers.1.self_attn.v_proj.weight': [8, 16], 'lm_head.weight': [50, 16] },
  gemma2: {
    'model.layers.0.self_attn.q_proj.weight': [32, 16], 'model.layers.0.self_attn.o_proj.weight': [16, 32],
    'model.layers.0.pre_feedforward_layernorm.weight': [16], 'model.layers.1.post_feedforward_layernorm.weight': [16],
  },
};
const ABSENT: Record<HFModelType, string[]> = {
  gpt2: ['lm_head.weight'], gpt_neox: [], llama: ['model.layers.0.self_attn.q_proj.bias'],
  qwen2: ['lm_head.weight', 'model.layers.0.self_attn.o_proj.bias'], mistral: [], gemma2: ['lm_head.weight'],
};

describe('hf-checkpoint', () => {
  it.each(HF_MODEL_TYPES)('%s: native names and shapes, config keys, same values in F32/F16/BF16 sharded', (t) => {
    const a = writeHFCheckpoint(join(dir, `${t}-f32`), { modelType: t, seed: 3 });
    writeHFCheckpoint(join(dir, `${t}-bf16`), { modelType: t, seed: 3, dtype: 'BF16', shards: 3 });
    writeHFCheckpoint(join(dir, `${t}-f16`), { modelType: t, seed: 3, dtype: 'F16', shards: 2 });
    const read = readSafetensorsFolder(join(dir, `${t}-f32`));
    for (const [name, shape] of Object.entries(EXPECTED[t])) expect(read.get(name)?.shape, name).toEqual(shape);
    for (const name of ABSENT[t]) expect(read.has(name), name).toBe(false);
    const cfg = JSON.parse(readFileSync(join(dir, `${t}-f32`, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.model_type).toBe(t);
    expect(existsSync(join(dir, `${t}-bf16`, 'model.safetensors.index.json'))).toBe(true);
    for (const other of ['bf16', 'f16']) {
      const b = readSafetensorsFolder(join(dir, `${t}-${other}`));
      expect([...b.keys()].sort()).toEqual([...read.keys()].sort());
      for (const [k, v] of read) expect(Array.from(b.get(k)!.data), `${other} ${k}`).toEqual(Array.from(v.data));
    }
    expect(a.tensors.size).toBe(read.size);
  });

  it('is deterministic per seed; norm weights scatter around 1 (around 0 for gemma2)', () => {
    const x = writeHFCheckpoint(join(dir, 'det-a'), { modelType: 'llama', seed: 9 });
    const y = writeHFCheckpoint(join(dir, 'det-b'), { modelType: 'llama', seed: 9 });
    const z = writeHFCheckpoint(join(dir, 'det-c'), { modelType: 'llama', seed: 10 });
    expect(readFileSync(join(dir, 'det-a', 'model.safetensors'))).toEqual(readFileSync(join(dir, 'det-b', 'model.safetensors')));
    expect(x.tensors.get('model.norm.weight')!.data).toEqual(y.tensors.get('model.norm.weight')!.data);
    expect(x.tensors.get('model.norm.weight')!.data).not.toEqual(z.tensors.get('model.norm.weight')!.data);
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const n = x.tensors.get('model.layers.0.input_layernorm.weight')!.data;
    expect(Math.abs(mean(n) - 1)).toBeLessThan(0.15);
    expect(Math.max(...n.map((v) => Math.abs(v - 1)))).toBeGreaterThan(0.05);
    const g = writeHFCheckpoint(join(dir, 'gemma-n'), { modelType: 'gemma2' }).tensors.get('model.norm.weight')!.data;
    expect(Math.abs(mean(g))).toBeLessThan(0.15);
  });

  it('zeroBias zeroes biases only; buffers are written for loaders to ignore', () => {
    const z = writeHFCheckpoint(join(dir, 'neox-zb'), { modelType: 'gpt_neox', zeroBias: true, buffers: true });
    const nz = writeHFCheckpoint(join(dir, 'neox-nz'), { modelType: 'gpt_neox' });
    for (const [k, v] of z.tensors) {
      if (k.endsWith('.bias') && !k.endsWith('attention.bias')) expect(v.data.every((u) => u === 0), k).toBe(true);
    }
    expect(z.tensors.get('embed_out.weight')!.data).toEqual(nz.tensors.get('embed_out.weight')!.data);
    const read = readSafetensorsFolder(join(dir, 'neox-zb'));
    expect(read.get('gpt_neox.layers.0.attention.bias')?.dtype).toBe('BOOL');
    expect(read.get('gpt_neox.layers.0.attention.rotary_emb.inv_freq')?.shape).toEqual([2]);
  });

  it('half and bfloat16 codecs round to nearest even', () => {
    for (const v of [0, 1, -2.5, 65504, 1e-5, 2 ** -24, 3.14159, -1e-8]) {
      const h = f16BitsToNumber(f32ToF16Bits(v));
      expect(Math.abs(h - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
      const b = bf16BitsToNumber(f32ToBf16Bits(v));
      expect(Math.abs(b - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8);
    }
    expect(f16BitsToNumber(f32ToF16Bits(1 + 2 ** -11))).toBe(1); // tie -> even
    expect(f16BitsToNumber(f32ToF16Bits(1e6))).toBe(Infinity);
  });
});
