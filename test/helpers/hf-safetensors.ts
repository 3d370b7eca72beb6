/**
 * A tiny, self-contained safetensors writer and reader for test references (no relp code, so the
 * references stay independent of what they judge).
 *
 * Format: u64 little-endian header length N, N bytes of JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the raw
 * little-endian tensor bytes (offsets relative to the end of the header).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Storage dtypes this helper writes and reads. */
export type StDtype = 'F32' | 'F16' | 'BF16' | 'BOOL';

/** A tensor as written: row-major values with a shape. */
export interface StTensor {
  shape: number[];
  data: Float32Array;
  /** Storage dtype of this tensor; defaults to the file's dtype. */
  dtype?: StDtype;
}

/** A tensor as read back, widened to float64. */
export interface StTensor64 {
  shape: number[];
  data: Float64Array;
  dtype: StDtype;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** float32 bits -> IEEE half bits, round to nearest even (subnormals, inf and NaN handled). */
export function f32ToF16Bits(v: number): number {
  F32[0] = v;
  const x = U32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  e = half >>> 10;
  return sign | (e >= 0x1f ? 0x7c00 : half);
}

/** IEEE half bits -> number. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** float32 -> bfloat16 bits, round to nearest even. */
export function f32ToBf16Bits(v: number): number {
  F32[0] = v;
  const x = U32[0];
  if (((x >>> 23) & 0xff) === 0xff && x & 0x7fffff) return (x >>> 16) | 0x40;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** bfloat16 bits -> number (the top half of a float32). */
export function bf16BitsToNumber(b: number): number {
  U32[0] = (b & 0xffff) << 16;
  return F32[0];
}

const BYTES: Record<StDtype, number> = { F32: 4, F16: 2, BF16: 2, BOOL: 1 };

function encode(t: StTensor, dtype: StDtype): Buffer {
  const n = t.data.length;
  const out = Buffer.alloc(n * BYTES[dtype]);
  for (let i = 0; i < n; i++) {
    const v = t.data[i];
    if (dtype === 'F32') out.writeFloatLE(v, 4 * i);
    else if (dtype === 'F16') out.writeUInt16LE(f32ToF16Bits(v), 2 * i);
    else if (dtype === 'BF16') out.writeUInt16LE(f32ToBf16Bits(v), 2 * i);
    else out.writeUInt8(v ? 1 : 0, i);
  }
  return out;
}

/** Serialise named tensors as safetensors bytes (`dtype` for tensors that do not set their own). */
export function safetensorsBytes(entries: [string, StTensor][], dtype: StDtype): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const blobs: Buffer[] = [];
  let off = 0;
  for (const [name, t] of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors writer: ${name} has ${t.data.length} values for shape [${t.shape}]`);
    const dt = t.dtype ?? dtype;
    const b = encode(t, dt);
    header[name] = { dtype: dt, shape: t.shape, data_offsets: [off, off + b.length] };
    blobs.push(b);
    off += b.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the spec allows space padding to 8 bytes
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), ...blobs]);
}

/**
 * Write tensors to `dir` as `model.safetensors`, or over `shards` files
 * `model-0000i-of-0000n.safetensors` with a `model.safetensors.index.json` weight map.
 */
export function writeSafetensorsFolder(dir: string, entries: [string, StTensor][], dtype: StDtype, shards = 1): void {
  if (shards <= 1) {
    writeFileSync(join(dir, 'model.safetensors'), safetensorsBytes(entries, dtype));
    return;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = entries.filter((_, i) => i % shards === s);
    for (const [k, t] of part) {
      weightMap[k] = file;
      total += t.data.length * BYTES[t.dtype ?? dtype];
    }
    writeFileSync(join(dir, file), safetensorsBytes(part, dtype));
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
}

/** Parse one safetensors file into float64 tensors. */
export function readSafetensorsFile(path: string): Map<string, StTensor64> {
  const raw = readFileSync(path);
  if (raw.length < 8) throw new Error(`${path}: too short for a safetensors file`);
  const n = Number(raw.readBigUInt64LE(0));
  const header = JSON.parse(raw.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + n;
  const out = new Map<string, StTensor64>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dt = info.dtype as StDtype;
    if (!(dt in BYTES)) throw new Error(`${path}: tensor ${name} has unsupported dtype ${info.dtype}`);
    const [b, e] = info.data_offsets;
    const count = info.shape.reduce((a, c) => a * c, 1);
    if ((e - b) !== count * BYTES[dt]) throw new Error(`${path}: tensor ${name} has ${e - b} bytes for shape [${info.shape}] ${dt}`);
    const data = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const at = base + b + i * BYTES[dt];
      data[i] = dt === 'F32' ? raw.readFloatLE(at) : dt === 'F16' ? f16BitsToNumber(raw.readUInt16LE(at))
        : dt === 'BF16' ? bf16BitsToNumber(raw.readUInt16LE(at)) : raw.readUInt8(at);
    }
    out.set(name, { shape: [...info.shape], data, dtype: dt });
  }
  return out;
}

/** Read every tensor of an HF folder (single file or sharded with an index). */
export function readSafetensorsFolder(dir: string): Map<string, StTensor64> {
  const index = join(dir, 'model.safetensors.index.json');
  let files = ['model.safetensors'];
  if (existsSync(index)) {
    const map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
    files = [...new Set(Object.values(map))].sort();
  }
  const out = new Map<string, StTensor64>();
  for (const f of files) {
    const p = join(dir, f);
    if (!existsSync(p)) throw new Error(`${dir}: missing weights file ${f}`);
    for (const [k, v] of readSafetensorsFile(p)) out.set(k, v);
  }
  return out;
}
