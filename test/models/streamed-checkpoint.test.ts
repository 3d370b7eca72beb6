import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hfToCanonical } from '../../src/models/architectures/index.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { openStreamedCheckpoint } from '../../src/models/streamed-checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { HASH_CACHE_NAME, checkpointSha256 } from '../../src/io/file-hash.ts';
import type { StateDict } from '../../src/models/state-dict.ts';
import { writeHFCheckpoint, type HFCheckpointOptions } from '../helpers/hf-checkpoint.ts';
import { makeTmpModelDir } from '../helpers/tmp-model.ts';

const root = mkdtempSync(join(tmpdir(), 'relp-streamed-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const write = (o: HFCheckpointOptions) => writeHFCheckpoint(join(root, `m${n++}`), o);

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function expectExact(got: StateDict, want: StateDict): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, t] of want) {
    expect(got.get(k)!.shape, k).toEqual(t.shape);
    expect(bits(got.get(k)!.data), k).toEqual(bits(t.data));
  }
}

/** Rows [r0, r1) of a row-major [rows, cols] array. */
const rows = (data: Float32Array, cols: number, r0: number, r1: number) => data.slice(r0 * cols, r1 * cols);

const CASES: [string, HFCheckpointOptions][] = [
  ['gpt2 F32', { modelType: 'gpt2', nLayers: 3 }],
  ['gpt2 untied, transformer. prefix, buffers, F16', { modelType: 'gpt2', nLayers: 2, prefix: true, buffers: true, tieWordEmbeddings: false, dtype: 'F16' }],
  ['gpt_neox BF16 sharded', { modelType: 'gpt_neox', nLayers: 3, dtype: 'BF16', shards: 3, buffers: true }],
  ['llama GQA F32 sharded', { modelType: 'llama', nLayers: 3, nHeads: 4, nKvHeads: 2, shards: 2 }],
  ['llama GQA BF16', { modelType: 'llama', nLayers: 2, nHeads: 4, nKvHeads: 1, dtype: 'BF16', buffers: true }],
  ['qwen2 biases F16 sharded', { modelType: 'qwen2', nLayers: 2, dtype: 'F16', shards: 2, tieWordEmbeddings: false }],
  ['gemma2 BF16', { modelType: 'gemma2', nLayers: 3, dtype: 'BF16' }],
];

describe('openStreamedCheckpoint: reads equal the whole-model conversion', () => {
  it.each(CASES)('%s', async (_name, o) => {
    const ck = write(o);
    const loaded = await loadCheckpoint(ck.dir);
    const canon = hfToCanonical(loaded.config, loaded.stateDict);
    const src = await openStreamedCheckpoint(ck.dir);
    try {
      expect(src.config).toEqual(loaded.config);
      expect(src.files).toEqual(loaded.files);
      const { nLayers: L, dModel: d, dVocab: V } = src.config;
      for (let l = 0; l < L; l++) {
        const want = new Map([...canon].filter(([k]) => k.startsWith(`blocks.${l}.`)));
        expectExact(src.readBlock(l), want);
      }
      const globals = new Map([...canon].filter(([k]) => !k.startsWith('blocks.') && k !== 'embed.W_E' && k !== 'unembed.W_U'));
      expect(globals.size).toBeGreaterThan(0);
      expectExact(src.readGlobals(), globals);

      const WE = canon.get('embed.W_E')!.data;
      const ids = [3, 0, V - 1, 3];
      const emb = src.readEmbeddingRows(ids);
      expect(bits(emb)).toEqual(bits(Float32Array.from(ids.flatMap((i) => [...rows(WE, d, i, i + 1)]))));
      // Independently of relp's reader: the helper's stored values.
      const stored = [...ck.tensors].find(([k]) => /(wte|embed_in|embed_tokens)\.weight$/.test(k))![1].data;
      expect(bits(emb.subarray(0, d))).toEqual(bits(rows(stored, d, 3, 4)));

      // Unembedding rows [v0, v1) as stored: W_Uᵀ, or W_E when tied.
      const WU = canon.get('unembed.W_U');
      const head = WU ? new Float32Array(V * d).map((_, k) => WU.data[(k % d) * V + Math.floor(k / d)]) : WE;
      expect(bits(src.readUnembedRows(2, 7))).toEqual(bits(rows(head, d, 2, 7)));
      expect(bits(src.readUnembedRows(0, V))).toEqual(bits(head));
      expect(src.readUnembedRows(4, 4).length).toBe(0);
      expect(src.bytesOnDisk).toBe(loaded.files.filter((f) => f.endsWith('.safetensors')).reduce((a, f) => a + statSync(f).size, 0));
    } finally {
      src.close();
    }
  });

  it('refuses out-of-range blocks, ids and rows, and reads after close, naming the file', async () => {
    const src = await openStreamedCheckpoint(write({ modelType: 'gpt2', nLayers: 2 }).dir);
    expect(() => src.readBlock(2)).toThrow(/block 2 does not exist \(the model has 2 blocks\)/);
    expect(() => src.readEmbeddingRows([50])).toThrow(/model\.safetensors: token id 50 is outside the embedding "wte\.weight" \[50, 16\]/);
    expect(() => src.readUnembedRows(3, 51)).toThrow(/rows \[3, 51\) are outside the unembedding/);
    src.close();
    expect(() => src.readGlobals()).toThrow(/checkpoint is closed/);
  });
});

/** The streamed open and loadCheckpoint reject with the very same message. */
async function expectSameError(dir: string, pattern: RegExp): Promise<void> {
  const whole = await loadCheckpoint(dir).then(() => undefined, (e: Error) => e.message);
  const streamed = await openStreamedCheckpoint(dir).then(() => undefined, (e: Error) => e.message);
  expect(streamed).toMatch(pattern);
  expect(streamed).toBe(whole);
}

describe('openStreamedCheckpoint: named errors at open, before any data is read', () => {
  it('a truncated file', async () => {
    const { dir } = write({ modelType: 'llama', nLayers: 2 });
    const f = join(dir, 'model.safetensors');
    truncateSync(f, statSync(f).size - 10);
    await expectSameError(dir, /model\.safetensors: truncated file: tensor "lm_head\.weight" needs data bytes up to \d+/);
  });

  it('a missing shard', async () => {
    const { dir } = write({ modelType: 'gpt_neox', nLayers: 2, shards: 3 });
    unlinkSync(join(dir, 'model-00002-of-00003.safetensors'));
    await expectSameError(dir, /model\.safetensors\.index\.json: shard file\(s\) listed in the index are missing: model-00002-of-00003\.safetensors/);
  });

  it('a missing tensor and a wrong shape', async () => {
    const { dir } = write({ modelType: 'gpt2', nLayers: 2 });
    const f = join(dir, 'model.safetensors');
    const sd = readSafetensors(f);
    sd.delete('h.1.mlp.c_fc.bias');
    sd.set('h.0.ln_1.weight', { shape: [4, 4], data: sd.get('h.0.ln_1.weight')!.data });
    writeSafetensors(f, sd);
    await expectSameError(dir, /model\.safetensors: weights do not match config\.json:\n  - tensor "h\.0\.ln_1\.weight" has shape \[4, 4\], expected \[16\]\n  - missing tensor "h\.1\.mlp\.c_fc\.bias" \(expected shape \[64\]\)/);
  });

  it('ONNX weights are refused, pointing to safetensors', async () => {
    const m = makeTmpModelDir({ format: 'onnx' });
    try {
      await expect(openStreamedCheckpoint(m.dir)).rejects.toThrow(/onnx[/\\]model\.onnx: ONNX weights cannot be streamed block by block; use model\.safetensors/);
    } finally {
      m.cleanup();
    }
  });
});

/** The old whole-file definition, computed here apart from relp: weight files' bytes, then config.json. */
function wholeFileHash(files: string[]): string {
  const h = createHash('sha256');
  for (const f of [...files.slice(1), files[0]]) h.update(readFileSync(f));
  return h.digest('hex');
}

describe('checkpoint hash', () => {
  it('equals sha256 over the weight files then config.json, single and sharded', async () => {
    for (const shards of [1, 3]) {
      const src = await openStreamedCheckpoint(write({ modelType: 'gpt2', nLayers: 2, shards }).dir);
      expect(src.files.length).toBe(shards === 1 ? 2 : 5);
      expect(src.hash()).toBe(wholeFileHash(src.files));
      src.close();
    }
  });

  it('small checkpoints are not cached by default', async () => {
    const src = await openStreamedCheckpoint(write({ modelType: 'gpt2' }).dir);
    src.hash();
    expect(existsSync(join(src.files[0], '..', HASH_CACHE_NAME))).toBe(false);
    src.close();
  });

  it('is cached beside the checkpoint by size and mtime, and a changed mtime invalidates it', async () => {
    const { dir } = write({ modelType: 'llama', shards: 2 });
    const src = await openStreamedCheckpoint(dir);
    const files = src.files;
    src.close();
    const real = wholeFileHash(files);
    expect(checkpointSha256(files, { cacheMinBytes: 0 })).toBe(real);
    const cachePath = join(dir, HASH_CACHE_NAME);
    const cache = JSON.parse(readFileSync(cachePath, 'utf8'));
    expect(cache.entries[0].sha256).toBe(real);
    // A planted digest comes back: the second call read the cache, not the files.
    cache.entries[0].sha256 = 'f'.repeat(64);
    writeFileSync(cachePath, JSON.stringify(cache));
    expect(checkpointSha256(files, { cacheMinBytes: 0 })).toBe('f'.repeat(64));
    // Touching a shard changes its mtime: the entry no longer matches and the files are hashed.
    const later = new Date(Date.now() + 5000);
    utimesSync(files[2], later, later);
    expect(checkpointSha256(files, { cacheMinBytes: 0 })).toBe(real);
    expect(JSON.parse(readFileSync(cachePath, 'utf8')).entries[0].sha256).toBe(real);
  });

  it('works without a cache when the cache cannot be written', async () => {
    const { dir } = write({ modelType: 'gpt2' });
    const files = [join(dir, 'config.json'), join(dir, 'model.safetensors')];
    mkdirSync(join(dir, HASH_CACHE_NAME)); // a folder where the cache file would go
    expect(checkpointSha256(files, { cacheMinBytes: 0 })).toBe(wholeFileHash(files));
    const ro = join(root, 'ro-cache');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    expect(checkpointSha256(files, { cacheMinBytes: 0, cacheDir: ro })).toBe(wholeFileHash(files));
  });
});
