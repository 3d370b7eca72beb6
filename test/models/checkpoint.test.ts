import { existsSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configToHF, resolveConfig } from '../../src/models/config.ts';
import { loadCheckpoint, normalizeStateDict } from '../../src/models/checkpoint.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { randomStateDict, type StateDict } from '../../src/models/state-dict.ts';
import { makeTmpModelDir, TINY_CONFIG, type TmpModel } from '../helpers/tmp-model.ts';

const made: TmpModel[] = [];
function tmp(opts: Parameters<typeof makeTmpModelDir>[0] = {}): TmpModel {
  const m = makeTmpModelDir(opts);
  made.push(m);
  return m;
}
afterEach(() => {
  while (made.length) made.pop()!.cleanup();
});

function expectBitEqual(got: StateDict, want: StateDict): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, t] of want) {
    const g = got.get(k)!;
    expect(g.shape, k).toEqual(t.shape);
    expect(new Uint32Array(g.data.buffer, g.data.byteOffset, g.data.length), k).toEqual(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
  }
}

describe('loadCheckpoint: formats', () => {
  it('model.safetensors', async () => {
    const m = tmp({ seed: 1 });
    const ck = await loadCheckpoint(m.dir);
    expect(ck.format).toBe('safetensors');
    expect(ck.config).toEqual(resolveConfig(m.cfg));
    expect(ck.files).toEqual([join(m.dir, 'config.json'), join(m.dir, 'model.safetensors')]);
    expectBitEqual(ck.stateDict, m.stateDict);
  });

  it('sharded safetensors, and F16 / BF16 storage (values rounded as stored)', async () => {
    const ref = await loadCheckpoint(tmp({ seed: 2 }).dir);
    const sharded = tmp({ seed: 2, format: 'sharded' });
    const ck = await loadCheckpoint(sharded.dir);
    const rel = ck.files.map((f) => f.slice(sharded.dir.length + 1));
    expect(rel.slice(0, 2)).toEqual(['config.json', 'model.safetensors.index.json']);
    const n = rel.length - 2;
    expect(n).toBeGreaterThanOrEqual(3);
    expect(rel.slice(2)).toEqual(Array.from({ length: n }, (_, i) => `model-0000${i + 1}-of-0000${n}.safetensors`));
    expectBitEqual(ck.stateDict, ref.stateDict);
    for (const dtype of ['F16', 'BF16'] as const) {
      const m = tmp({ seed: 2, dtype, format: dtype === 'F16' ? 'safetensors' : 'sharded' });
      const half = await loadCheckpoint(m.dir);
      expectBitEqual(half.stateDict, m.stateDict);
      // Rounded, but close to the float32 weights (relative step 2^-11 / 2^-8).
      const a = half.stateDict.get('h.0.attn.c_attn.weight')!.data;
      const b = ref.stateDict.get('h.0.attn.c_attn.weight')!.data;
      const tol = dtype === 'F16' ? 2 ** -11 : 2 ** -8;
      let changed = 0;
      for (let i = 0; i < a.length; i++) {
        expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.abs(b[i]) * tol + 1e-7);
        if (a[i] !== b[i]) changed++;
      }
      expect(changed).toBeGreaterThan(a.length / 2);
    }
  });

  it('onnx/model.onnx (named and anonymous) and onnx/decoder_model.onnx give the same state dict as safetensors', async () => {
    const ref = await loadCheckpoint(tmp({ seed: 3 }).dir);
    for (const format of ['onnx', 'onnx-anon'] as const) {
      const m = tmp({ seed: 3, format });
      const ck = await loadCheckpoint(m.dir);
      expect(ck.format).toBe('onnx');
      expect(ck.files[1]).toBe(join(m.dir, 'onnx', 'model.onnx'));
      expect(ck.config).toEqual(ref.config);
      expectBitEqual(ck.stateDict, ref.stateDict);
    }
    const m = tmp({ seed: 3, format: 'onnx' });
    writeFileSync(join(m.dir, 'onnx', 'decoder_model.onnx'), readFileSync(join(m.dir, 'onnx', 'model.onnx')));
    unlinkSync(join(m.dir, 'onnx', 'model.onnx'));
    const ck = await loadCheckpoint(m.dir);
    expect(ck.files[1]).toBe(join(m.dir, 'onnx', 'decoder_model.onnx'));
    expectBitEqual(ck.stateDict, ref.stateDict);
  });

  it('copies the tokenizer fixture when asked (full GPT-2 vocabulary)', async () => {
    const m = tmp({ withTokenizer: true });
    expect(existsSync(join(m.dir, 'tokenizer.json'))).toBe(true);
    const ck = await loadCheckpoint(m.dir);
    expect(ck.config.dVocab).toBe(50257);
    expect(ck.config.eosTokenId).toBe(50256);
    expect(() => makeTmpModelDir({ withTokenizer: true, cfg: TINY_CONFIG })).toThrow(/withTokenizer needs dVocab 50257/);
  });
});

describe('loadCheckpoint: key normalisation', () => {
  /** A checkpoint folder whose weights file holds exactly `sd` (names as given). */
  function withWeights(sd: StateDict): string {
    const m = tmp();
    writeSafetensors(join(m.dir, 'model.safetensors'), sd);
    return m.dir;
  }

  it('accepts the transformer. prefix, skips attention buffers and a tied lm_head', async () => {
    const sd = randomStateDict(TINY_CONFIG, { seed: 4 });
    const raw: StateDict = new Map();
    for (const [k, t] of sd) raw.set(`transformer.${k}`, t);
    raw.set('lm_head.weight', { shape: [...sd.get('wte.weight')!.shape], data: Float32Array.from(sd.get('wte.weight')!.data) });
    for (let l = 0; l < TINY_CONFIG.nLayers; l++) {
      raw.set(`transformer.h.${l}.attn.bias`, { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) });
      raw.set(`transformer.h.${l}.attn.masked_bias`, { shape: [], data: Float32Array.of(-1e4) });
    }
    const ck = await loadCheckpoint(withWeights(raw));
    expectBitEqual(ck.stateDict, sd);
  });

  it('uses lm_head.weight as wte when wte is absent', async () => {
    const sd = randomStateDict(TINY_CONFIG, { seed: 5 });
    const raw = new Map(sd);
    raw.delete('wte.weight');
    raw.set('lm_head.weight', sd.get('wte.weight')!);
    expectBitEqual((await loadCheckpoint(withWeights(raw))).stateDict, sd);
  });

  it('rejects an lm_head that differs from wte, and a name present with and without prefix', async () => {
    const sd = randomStateDict(TINY_CONFIG, { seed: 6 });
    const raw = new Map(sd);
    const w = sd.get('wte.weight')!;
    const other = Float32Array.from(w.data);
    other[3] += 1;
    raw.set('lm_head.weight', { shape: w.shape, data: other });
    await expect(loadCheckpoint(withWeights(raw))).rejects.toThrow(/"lm_head\.weight" differs from "wte\.weight"/);
    expect(() => normalizeStateDict(new Map([['ln_f.bias', w], ['transformer.ln_f.bias', w]]), 'x')).toThrow(
      /x: tensor "ln_f\.bias" appears both with and without the "transformer\." prefix/,
    );
  });
});

describe('loadCheckpoint: clear errors', () => {
  it('missing config.json', async () => {
    const m = tmp();
    unlinkSync(join(m.dir, 'config.json'));
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/no config\.json found/);
  });

  it('a config error names config.json once, by its path', async () => {
    const m = tmp();
    writeFileSync(join(m.dir, 'config.json'), JSON.stringify({ ...configToHF(TINY_CONFIG), model_type: 'bert' }));
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(new Error(`${join(m.dir, 'config.json')}: model_type "bert" is not supported (supported: gpt2, gpt_neox, llama, qwen2, mistral, gemma2)`));
  });

  it('no weights file, listing what was looked for', async () => {
    const m = tmp();
    unlinkSync(join(m.dir, 'model.safetensors'));
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(
      /no weights found \(looked for model\.safetensors, model\.safetensors\.index\.json, onnx\/model\.onnx, onnx\/decoder_model\.onnx\)/,
    );
    writeFileSync(join(m.dir, 'pytorch_model.bin'), 'not read');
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/pytorch_model\.bin is present but is a PyTorch pickle relp cannot read/);
  });

  it('missing tensor, named', async () => {
    const m = tmp();
    const sd = new Map(m.stateDict);
    sd.delete('h.1.mlp.c_fc.bias');
    writeSafetensors(join(m.dir, 'model.safetensors'), sd);
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/missing tensor "h\.1\.mlp\.c_fc\.bias" \(expected shape \[32\]\)/);
  });

  it('wrong shape, expected vs got', async () => {
    const m = tmp();
    const sd = new Map(m.stateDict);
    sd.set('ln_f.weight', { shape: [2, 4], data: sd.get('ln_f.weight')!.data });
    writeSafetensors(join(m.dir, 'model.safetensors'), sd);
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/tensor "ln_f\.weight" has shape \[2, 4\], expected \[8\]/);
  });

  it('config that does not match the weights', async () => {
    const m = tmp();
    writeFileSync(join(m.dir, 'config.json'), JSON.stringify(configToHF({ ...TINY_CONFIG, nLayers: 3 })));
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/weights do not match config\.json:[\s\S]*missing tensor "h\.2\.ln_1\.weight"/);
    writeFileSync(join(m.dir, 'config.json'), JSON.stringify(configToHF({ ...TINY_CONFIG, dVocab: 51 })));
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/tensor "wte\.weight" has shape \[50, 8\], expected \[51, 8\]/);
  });

  it('unrecognised tensor names are listed when tensors are missing', async () => {
    const m = tmp();
    const raw: StateDict = new Map([...m.stateDict].map(([k, t]) => [`model.${k}`, t]));
    writeSafetensors(join(m.dir, 'model.safetensors'), raw);
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/unrecognised tensors in the file: model\.wte\.weight, model\.wpe\.weight/);
  });

  it('unsupported dtype and truncated file', async () => {
    const m = tmp();
    const path = join(m.dir, 'model.safetensors');
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    // Relabel wpe.weight as I32 (same width, so only the dtype is wrong).
    const header = bytes.subarray(8, 8 + n).toString('utf8').replace('"wpe.weight":{"dtype":"F32"', '"wpe.weight":{"dtype":"I32"');
    expect(header.length).toBe(n);
    writeFileSync(path, Buffer.concat([bytes.subarray(0, 8), Buffer.from(header), bytes.subarray(8 + n)]));
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/model\.safetensors: tensor "wpe\.weight" has unsupported dtype "I32"/);
    writeFileSync(path, bytes);
    truncateSync(path, statSync(path).size - 10);
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/model\.safetensors: truncated file: tensor "ln_f\.bias"/);
  });

  it('shard listed in the index but missing', async () => {
    const m = tmp({ format: 'sharded' });
    const index = JSON.parse(readFileSync(join(m.dir, 'model.safetensors.index.json'), 'utf8'));
    const shard: string = index.weight_map['h.1.ln_2.weight'];
    rmSync(join(m.dir, shard));
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(new RegExp(`listed in the index are missing: ${shard.replace(/\./g, '\\.')}`));
  });

  it('ONNX file without GPT-2 weights lists the unmapped initializers', async () => {
    const m = tmp({ format: 'onnx-anon' });
    // Rename every node so nothing maps to a module: the anonymous weights become unrecognisable.
    const path = join(m.dir, 'onnx', 'model.onnx');
    const onnxProto = (await import('onnx-proto')).default;
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(path));
    for (const node of model.graph!.node!) node.name = node.name!.replace('/h.', '/block.').replace('/wte/', '/tok/');
    writeFileSync(path, onnxProto.onnx.ModelProto.encode(model).finish());
    await expect(loadCheckpoint(m.dir)).rejects.toThrow(/missing tensor "h\.0\.ln_1\.weight"[\s\S]*unrecognised tensors in the file: onnx::/);
  });
});
