import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  readSafetensors,
  readSafetensorsHeader,
  readShardedSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
} from '../../src/io/safetensors.ts';
import { mulberry32, type StateDict } from '../../src/models/state-dict.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'relp-st-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Values spanning normal, subnormal, huge, tie and special cases for both half formats. */
function testValues(): Float32Array {
  const rand = mulberry32(7);
  const vals: number[] = [0, -0, 1, -2, 0.1, 1 / 3, 65504, 65519, 65520, 70000, -1e6, 1e-8, 6e-8, 3e-8, 2.98e-8, 1e-5, -6.1e-5];
  vals.push(1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -26, Infinity, -Infinity); // exact ties for F16
  vals.push(1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, -3.4e38); // exact ties for BF16, overflow region
  for (let i = 0; i < 400; i++) {
    const scale = 10 ** (Math.floor(rand() * 14) - 9);
    vals.push((rand() - 0.5) * 2 * scale);
  }
  return Float32Array.from(vals);
}

/** Independent binary16 decoder: value = (-1)^s · 2^(e-15) · (1 + m/1024), subnormals 2^-14 · m/1024. */
function halfValue(bits: number): number {
  const s = bits >> 15 ? -1 : 1;
  const e = (bits >> 10) & 31;
  const m = bits & 1023;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return e === 0 ? s * Math.pow(2, -14) * (m / 1024) : s * Math.pow(2, e - 15) * (1 + m / 1024);
}

/** Reference F16 rounding: nearest representable value by search over all 31744 finite magnitudes, ties to even. */
const HALF_MAGNITUDES = Array.from({ length: 0x7c00 }, (_, b) => halfValue(b)); // ascending for positive bit patterns

function refRoundF16(x: number): number {
  if (!Number.isFinite(x)) return x;
  const mags = HALF_MAGNITUDES;
  const a = Math.abs(x);
  const sign = x < 0 || Object.is(x, -0) ? -1 : 1;
  if (a >= 65520) return sign * Infinity; // max 65504 plus half an ulp (16)
  let lo = 0;
  let hi = mags.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (mags[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo === mags.length - 1) return sign * mags[lo];
  const dLo = a - mags[lo];
  const dHi = mags[lo + 1] - a;
  const pick = dLo < dHi ? lo : dHi < dLo ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
  return sign * mags[pick];
}

/** Reference BF16 rounding: compare distances to the two bf16 neighbours (float32 with low 16 bits cut). */
function refRoundBf16(x: number): number {
  if (!Number.isFinite(x)) return x;
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x, true);
  const bits = dv.getUint32(0, true);
  const upper = bits >>> 16;
  const value = (u: number) => {
    dv.setUint32(0, (u << 16) >>> 0, true);
    return dv.getFloat32(0, true);
  };
  const down = value(upper); // toward zero
  const up = value(upper + 1); // away from zero (may be Infinity)
  // Beyond the largest finite value the next step is 2^128 (as with an unbounded exponent).
  const upForDistance = Number.isFinite(up) ? up : Math.sign(up) * 2 ** 128;
  const f = Math.fround(x);
  const dDown = Math.abs(f - down);
  const dUp = Math.abs(upForDistance - f);
  if (dDown < dUp) return down;
  if (dUp < dDown) return up;
  return upper % 2 === 0 ? down : up;
}

function sdOf(values: Float32Array): StateDict {
  return new Map([
    ['vec', { shape: [values.length], data: values }],
    ['mat', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
    ['scalar', { shape: [], data: Float32Array.of(-7.25) }],
  ]);
}

describe('safetensors round trips', () => {
  it('F32 is bit exact, keeps shapes and names, and writes a valid layout', () => {
    const vals = testValues();
    const sd = sdOf(vals);
    const path = join(dir, 'a.safetensors');
    writeSafetensors(path, sd, { metadata: { format: 'pt', note: 'x' } });
    const back = readSafetensors(path);
    expect([...back.keys()]).toEqual(['vec', 'mat', 'scalar']);
    for (const [k, t] of sd) {
      expect(back.get(k)!.shape).toEqual(t.shape);
      expect(new Uint32Array(back.get(k)!.data.buffer)).toEqual(new Uint32Array(t.data.buffer));
    }
    // Layout per spec, checked by hand: u64 LE header size, JSON, 8-byte aligned data start.
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header.__metadata__).toEqual({ format: 'pt', note: 'x' });
    expect(header.vec).toEqual({ dtype: 'F32', shape: [vals.length], data_offsets: [0, vals.length * 4] });
    expect(header.mat.data_offsets).toEqual([vals.length * 4, vals.length * 4 + 24]);
    expect(bytes.length).toBe(8 + n + (vals.length + 6 + 1) * 4);
    expect(bytes.readFloatLE(8 + n + vals.length * 4 + 8)).toBe(3); // mat[0,2]
    expect(readSafetensorsHeader(path).metadata).toEqual({ format: 'pt', note: 'x' });
  });

  it('F16 rounds to nearest even like an exhaustive search over binary16', () => {
    const vals = testValues();
    const path = join(dir, 'h.safetensors');
    writeSafetensors(path, sdOf(vals), { dtype: 'F16' });
    const got = readSafetensors(path).get('vec')!.data;
    expect(readSafetensorsHeader(path).entries.get('vec')!.dtype).toBe('F16');
    for (let i = 0; i < vals.length; i++) {
      const want = refRoundF16(vals[i]);
      if (!Object.is(got[i], want)) throw new Error(`F16 rounding of ${vals[i]}: got ${got[i]}, want ${want}`);
    }
    expect(statSync(path).size).toBeLessThan(8 + 400 + vals.length * 2 + 40);
  });

  it('BF16 rounds to nearest even like a neighbour comparison', () => {
    const vals = testValues();
    const path = join(dir, 'b.safetensors');
    writeSafetensors(path, sdOf(vals), { dtype: 'BF16' });
    const got = readSafetensors(path).get('vec')!.data;
    for (let i = 0; i < vals.length; i++) {
      const want = refRoundBf16(vals[i]);
      if (!Object.is(got[i], want)) throw new Error(`BF16 rounding of ${vals[i]}: got ${got[i]}, want ${want}`);
    }
  });

  it('NaN survives every dtype', () => {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const path = join(dir, `nan-${dtype}.safetensors`);
      writeSafetensors(path, new Map([['x', { shape: [2], data: Float32Array.of(NaN, 1) }]]), { dtype });
      const d = readSafetensors(path).get('x')!.data;
      expect(Number.isNaN(d[0])).toBe(true);
      expect(d[1]).toBe(1);
    }
  });
});

/** Build a safetensors file by hand from a header object and raw bytes. */
function handMade(path: string, header: Record<string, unknown>, data: number[]): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, Buffer.from(data)]));
}

describe('reading files written by hand', () => {
  it('decodes known F16 / BF16 / F32 bit patterns (unaligned header length)', () => {
    const path = join(dir, 'hand.safetensors');
    // F16: 1.0 = 3C00, -2 = C000, 0x3555 = 0.333251953125, 0x0001 = 2^-24, 0x7C00 = Inf (little-endian bytes)
    const f16 = [0x00, 0x3c, 0x00, 0xc0, 0x55, 0x35, 0x01, 0x00, 0x00, 0x7c];
    // BF16: 3F80 = 1, 4049 = 3.140625, C2F7 = -123.5
    const bf16 = [0x80, 0x3f, 0x49, 0x40, 0xf7, 0xc2];
    // F32: 1.5 = 3FC00000
    const f32 = [0x00, 0x00, 0xc0, 0x3f];
    handMade(
      path,
      {
        __metadata__: { format: 'pt' },
        h: { dtype: 'F16', shape: [5], data_offsets: [0, 10] },
        b: { dtype: 'BF16', shape: [3, 1], data_offsets: [10, 16] },
        f: { dtype: 'F32', shape: [1], data_offsets: [16, 20] },
      },
      [...f16, ...bf16, ...f32],
    );
    const sd = readSafetensors(path);
    expect(Array.from(sd.get('h')!.data)).toEqual([1, -2, 0.333251953125, 2 ** -24, Infinity]);
    expect(Array.from(sd.get('b')!.data)).toEqual([1, 3.140625, -123.5]);
    expect(sd.get('b')!.shape).toEqual([3, 1]);
    expect(Array.from(sd.get('f')!.data)).toEqual([1.5]);
  });

  it('rejects other dtypes naming tensor and dtype, unless filtered out', () => {
    const path = join(dir, 'i64.safetensors');
    handMade(
      path,
      {
        ok: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        'h.0.attn.bias': { dtype: 'I64', shape: [1], data_offsets: [4, 12] },
      },
      [0, 0, 0x80, 0x3f, 1, 0, 0, 0, 0, 0, 0, 0],
    );
    expect(() => readSafetensors(path)).toThrow(/i64\.safetensors: tensor "h\.0\.attn\.bias" has unsupported dtype "I64"/);
    const sd = readSafetensors(path, { filter: (n) => n === 'ok' });
    expect([...sd.keys()]).toEqual(['ok']);
    expect(sd.get('ok')!.data[0]).toBe(1);
  });

  it('rejects data_offsets that do not match the shape', () => {
    const path = join(dir, 'bad.safetensors');
    handMade(path, { w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, [0, 0, 0, 0]);
    expect(() => readSafetensors(path)).toThrow(/tensor "w" \(F32 \[2\]\) needs 8 bytes but data_offsets span 4/);
  });

  it('rejects a header that is not JSON', () => {
    const path = join(dir, 'junk.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(5n);
    writeFileSync(path, Buffer.concat([len, Buffer.from('{oops')]));
    expect(() => readSafetensors(path)).toThrow(/junk\.safetensors: safetensors header is not valid JSON/);
  });
});

describe('truncated files', () => {
  const sd: StateDict = new Map([
    ['first', { shape: [4], data: Float32Array.of(1, 2, 3, 4) }],
    ['last.weight', { shape: [2, 2], data: Float32Array.of(5, 6, 7, 8) }],
  ]);

  it('names the file and the tensor cut off', () => {
    const path = join(dir, 'cut.safetensors');
    writeSafetensors(path, sd);
    truncateSync(path, statSync(path).size - 3);
    expect(() => readSafetensors(path)).toThrow(/cut\.safetensors: truncated file: tensor "last\.weight" needs data bytes up to 32, but the data section holds only 29/);
  });

  it('detects a file cut inside the header, and one shorter than 8 bytes', () => {
    const path = join(dir, 'cut2.safetensors');
    writeSafetensors(path, sd);
    truncateSync(path, 20);
    expect(() => readSafetensors(path)).toThrow(/cut2\.safetensors: truncated safetensors file: its header length says \d+ bytes of header, but the file has only 20 bytes$/);
    truncateSync(path, 5);
    expect(() => readSafetensors(path)).toThrow(/cut2\.safetensors: truncated safetensors file: it has only 5 bytes, and the header length alone takes 8$/);
  });

  it('says a header of zero bytes (a preallocated download cut short) is truncated, and a Git LFS pointer is not safetensors', () => {
    const path = join(dir, 'zeros.safetensors');
    writeSafetensors(path, sd);
    const bytes = readFileSync(path);
    bytes.fill(0, 20);
    writeFileSync(path, bytes);
    expect(() => readSafetensors(path)).toThrow(/zeros\.safetensors: truncated or partly written safetensors file: its \d+-byte header holds zero bytes$/);
    writeFileSync(path, 'version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 123456\n');
    expect(() => readSafetensors(path)).toThrow(/zeros\.safetensors: not a safetensors file: it starts with "version " \(a Git LFS pointer\?/);
  });
});

describe('sharded safetensors', () => {
  const rand = mulberry32(3);
  const sd: StateDict = new Map();
  for (let i = 0; i < 7; i++) sd.set(`t${i}`, { shape: [5, 2], data: Float32Array.from({ length: 10 }, () => rand()) });

  it('writes HF-style shards + index and reads them back exactly', () => {
    const { shards, indexPath } = writeShardedSafetensors(dir, sd, { maxShardBytes: 100 });
    // 40 bytes per tensor, 2 per shard -> 4 shards.
    expect(readdirSync(dir).sort()).toEqual([
      'model-00001-of-00004.safetensors',
      'model-00002-of-00004.safetensors',
      'model-00003-of-00004.safetensors',
      'model-00004-of-00004.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    expect(index.metadata.total_size).toBe(7 * 40);
    expect(index.weight_map.t0).toBe('model-00001-of-00004.safetensors');
    expect(index.weight_map.t6).toBe('model-00004-of-00004.safetensors');
    expect(shards).toHaveLength(4);
    const { tensors, files } = readShardedSafetensors(indexPath);
    expect(files).toHaveLength(4);
    expect([...tensors.keys()].sort()).toEqual([...sd.keys()].sort());
    for (const [k, t] of sd) expect(tensors.get(k)!.data).toEqual(t.data);
  });

  it('names a shard listed in the index but missing', () => {
    const { indexPath } = writeShardedSafetensors(dir, sd, { maxShardBytes: 50, dtype: 'BF16' }); // 20 bytes per tensor
    unlinkSync(join(dir, 'model-00002-of-00004.safetensors'));
    expect(() => readShardedSafetensors(indexPath)).toThrow(/shard file\(s\) listed in the index are missing: model-00002-of-00004\.safetensors/);
  });

  it('names a tensor the index places in a shard that lacks it', () => {
    const { indexPath } = writeShardedSafetensors(dir, sd, { maxShardBytes: 100 });
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    index.weight_map.t0 = 'model-00003-of-00004.safetensors';
    writeFileSync(indexPath, JSON.stringify(index));
    expect(() => readShardedSafetensors(indexPath)).toThrow(/model-00003-of-00004\.safetensors: index says this shard holds "t0", but it does not/);
  });
});
