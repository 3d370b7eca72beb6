import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { configFromHF, hfToCanonical } from '../../src/models/architectures/index.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { CHECKPOINT_SHAPES, normalQuantile, writeRandomCheckpoint } from '../../src/models/random-checkpoint.ts';
import { openStreamedCheckpoint } from '../../src/models/streamed-checkpoint.ts';
import { roundThrough } from '../../src/io/safetensors.ts';
import { main } from '../../scripts/make-checkpoint.ts';

const root = mkdtempSync(join(tmpdir(), 'relp-randck-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `c${n++}`);

/** The named shapes, shrunk so a test writes them in milliseconds (same code path). */
const SMALL: Record<string, Record<string, unknown>> = {
  'gpt2-small': { n_layer: 2, n_embd: 64, n_head: 4, vocab_size: 300, n_positions: 64, n_ctx: 64 },
  'gpt2-large': { n_layer: 3, n_embd: 40, n_head: 5, vocab_size: 257 },
  'gemma2-2b': { num_hidden_layers: 3, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 96, vocab_size: 300 },
  'llama3-8b': { num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 96, vocab_size: 300 },
};

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + (v - mean(a)) ** 2, 0) / a.length);

describe('writeRandomCheckpoint', () => {
  it.each(Object.keys(SMALL))('%s (shrunk) loads and validates, as published: dtype, shards, config fields', async (name) => {
    const shape = CHECKPOINT_SHAPES[name];
    const dir = fresh();
    const r = writeRandomCheckpoint(dir, { config: { ...shape.config, ...SMALL[name] }, dtype: shape.dtype, shards: shape.shards });
    const ck = await loadCheckpoint(dir);
    expect(ck.config).toEqual(configFromHF({ ...shape.config, ...SMALL[name] }));
    expect(ck.config).toEqual(r.config);
    expect(ck.files).toEqual(r.files);
    expect(readdirSync(dir).filter((f) => f.endsWith('.safetensors')).length).toBe(shape.shards);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype).toBe(shape.dtype === 'F32' ? 'float32' : 'bfloat16');
    if (shape.shards > 1) {
      const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
      expect(index.metadata.total_size).toBe(r.tensorBytes);
      expect(Object.keys(index.weight_map).length).toBe(ck.stateDict.size);
    }
    expect(r.parameters).toBe([...ck.stateDict.values()].reduce((a, t) => a + t.data.length, 0));
    // The streamed reader opens it too, and agrees with the whole-model conversion.
    const canon = hfToCanonical(ck.config, ck.stateDict);
    const src = await openStreamedCheckpoint(dir);
    const b = src.readBlock(1);
    for (const [k, t] of b) expect(t.data, k).toEqual(canon.get(k)!.data);
    src.close();
  });

  it('keeps the published shapes: Gemma-2 soft-caps, scalar, window; Llama-3 theta and GQA', () => {
    const g = configFromHF(CHECKPOINT_SHAPES['gemma2-2b'].config);
    expect([g.nLayers, g.dModel, g.nHeads, g.nKvHeads, g.dHead, g.dMlp, g.dVocab]).toEqual([26, 2304, 8, 4, 256, 9216, 256000]);
    expect([g.attnSoftcap, g.finalSoftcap, g.queryPreAttnScalar, g.slidingWindow, g.act, g.tiedEmbeddings]).toEqual([50, 30, 256, 4096, 'gelu_tanh', true]);
    expect(g.slidingWindowLayers).toEqual(Array.from({ length: 13 }, (_, i) => 2 * i));
    const l = configFromHF(CHECKPOINT_SHAPES['llama3-8b'].config);
    expect([l.nLayers, l.dModel, l.nHeads, l.nKvHeads, l.dHead, l.dMlp, l.dVocab, l.ropeTheta, l.tiedEmbeddings]).toEqual([32, 4096, 32, 8, 128, 14336, 128256, 500000, false]);
    const s = configFromHF(CHECKPOINT_SHAPES['gpt2-large'].config);
    expect([s.nLayers, s.dModel, s.nHeads, s.dMlp, s.dVocab, s.nCtx, s.tiedEmbeddings]).toEqual([36, 1280, 20, 5120, 50257, 1024, true]);
  });

  it('is deterministic from the seed, the same whatever the sharding, and halves are the F32 values rounded', async () => {
    const config = { ...CHECKPOINT_SHAPES['llama3-8b'].config, ...SMALL['llama3-8b'] };
    const dirs = [fresh(), fresh(), fresh(), fresh(), fresh()];
    writeRandomCheckpoint(dirs[4], { config, seed: 5 });
    const one = (await loadCheckpoint(dirs[4])).stateDict;
    writeRandomCheckpoint(dirs[0], { config, seed: 5, shards: 3 });
    writeRandomCheckpoint(dirs[1], { config, seed: 5, dtype: 'BF16' });
    writeRandomCheckpoint(dirs[2], { config, seed: 5, dtype: 'F16', shards: 2 });
    writeRandomCheckpoint(dirs[3], { config, seed: 6 });
    const [sharded, bf16, f16, other] = await Promise.all(dirs.slice(0, 4).map(async (d) => (await loadCheckpoint(d)).stateDict));
    for (const [k, t] of one) {
      expect(same(sharded.get(k)!.data, t.data), k).toBe(true);
      expect(same(bf16.get(k)!.data, roundThrough(t.data, 'BF16')), k).toBe(true);
      expect(same(f16.get(k)!.data, roundThrough(t.data, 'F16')), k).toBe(true);
    }
    expect(other.get('model.layers.0.mlp.up_proj.weight')!.data).not.toEqual(one.get('model.layers.0.mlp.up_proj.weight')!.data);
    // Tensors differ from each other (seeded by position), and the values look like the init.
    const up = one.get('model.layers.0.mlp.up_proj.weight')!.data;
    expect(up).not.toEqual(one.get('model.layers.0.mlp.gate_proj.weight')!.data);
    expect(Math.abs(mean(up))).toBeLessThan(0.002);
    expect(std(up)).toBeGreaterThan(0.018);
    expect(std(up)).toBeLessThan(0.022);
    const gain = one.get('model.layers.1.input_layernorm.weight')!.data;
    expect(Math.abs(mean(gain) - 1)).toBeLessThan(0.05);
  });

  it('Gemma-2 gains are near 0 (its norm multiplies by 1 + w)', async () => {
    const dir = fresh();
    writeRandomCheckpoint(dir, { config: { ...CHECKPOINT_SHAPES['gemma2-2b'].config, ...SMALL['gemma2-2b'] } });
    const w = (await loadCheckpoint(dir)).stateDict.get('model.norm.weight')!.data;
    expect(Math.abs(mean(w))).toBeLessThan(0.05);
    expect(std(w)).toBeGreaterThan(0.05);
  });

  it('normalQuantile inverts the normal CDF', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 12);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 5);
  });
});

describe('scripts/make-checkpoint.ts', () => {
  it('writes a shape with overrides, dtype and shards, and refuses to overwrite without --force', async () => {
    const out = fresh();
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const args = ['node', 'make-checkpoint', '--shape', 'gpt2-small', '--out', out, '--dtype', 'f16', '--shards', '2', '--seed', '3'];
      for (const [k, v] of Object.entries(SMALL['gpt2-small'])) args.push('--set', `${k}=${v}`);
      expect(main(args)).toBe(0);
      expect(log.mock.calls[0][0]).toMatch(/gpt2-small, 0\.000B parameters, F16, 0\.00 GiB in 2 file\(s\)/);
      const ck = await loadCheckpoint(out);
      expect([ck.config.nLayers, ck.config.dModel, ck.config.dVocab]).toEqual([2, 64, 300]);
      expect(existsSync(join(out, 'model-00002-of-00002.safetensors'))).toBe(true);
      expect(() => main(args)).toThrow(/already holds a checkpoint \(config\.json\); pass --force/);
      expect(main([...args, '--force'])).toBe(0);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
  });
});
