/**
 * Reading and writing the safetensors format (https://huggingface.co/docs/safetensors).
 *
 * Layout: 8-byte little-endian header length N, then N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: v}}`, then the raw
 * little-endian tensor bytes; offsets are relative to the start of that byte buffer.
 *
 * Hand-rolled on purpose: the format is tiny and no maintained npm package decodes BF16 in Node.
 * Tensors are read one at a time with positioned reads, so files larger than a Node Buffer work
 * and nothing is copied twice. Everything decodes to float32.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { NamedArray, StateDict } from './tensors.ts';

/** Float dtypes relp reads and writes. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

/** Bytes per value of each dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2 };
const BYTES = SAFETENSORS_DTYPE_BYTES;
const SUPPORTED: readonly string[] = ['F32', 'F16', 'BF16'];
/** The spec caps the header at 100 MB; anything larger means a corrupt or foreign file. */
const MAX_HEADER_BYTES = 100_000_000;

if (endianness() !== 'LE') {
  // Typed-array views below assume a little-endian host, like the file format.
  throw new Error('relp safetensors I/O needs a little-endian machine');
}

// ---------------------------------------------------------------------------------------------
// Half-precision conversions (round to nearest, ties to even).

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits for a number, rounding to nearest even; overflow gives ±Infinity. */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf / quiet NaN
  const e = exp - 127 + 15; // exponent in binary16 bias
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal binary16 (or zero): shift the 24-bit significand right by 14 - e.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m++; // may carry into the smallest normal: still correct
    return sign | m;
  }
  let out = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (out & 1) === 1)) out++; // carry may reach Infinity: correct
  return out;
}

/** The number an IEEE binary16 bit pattern stands for. */
export function f16BitsToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 bits for a number (the top half of its float32, rounded to nearest even). */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The number a bfloat16 bit pattern stands for. */
export function bf16BitsToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0];
}

let f16Table: Float32Array | undefined;
function f16LookupTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** Decode F16 or BF16 bits into `out` from index `at` (no allocation). */
export function decodeHalfInto(bits: Uint16Array, dtype: 'F16' | 'BF16', out: Float32Array, at = 0): void {
  if (at + bits.length > out.length) throw new Error(`decodeHalfInto: ${bits.length} values do not fit at ${at} in ${out.length}`);
  if (dtype === 'F16') {
    const table = f16LookupTable();
    for (let i = 0; i < bits.length; i++) out[at + i] = table[bits[i]];
    return;
  }
  const outBits = new Uint32Array(out.buffer, out.byteOffset + at * 4, bits.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
}

/** Decode little-endian binary16 values to float32. */
export function decodeF16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  decodeHalfInto(bits, 'F16', out);
  return out;
}

/** Decode bfloat16 values to float32 (exact: a shift). */
export function decodeBf16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  decodeHalfInto(bits, 'BF16', out);
  return out;
}

/** Encode float32 values as binary16 bits. */
export function encodeF16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f32ToF16Bits(data[i]);
  return out;
}

/** Encode float32 values as bfloat16 bits. */
export function encodeBf16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f32ToBf16Bits(data[i]);
  return out;
}

/** Round float32 values through a storage dtype (what a reader gets back after writing). */
export function roundThrough(data: Float32Array, dtype: SafetensorsDtype): Float32Array {
  if (dtype === 'F32') return Float32Array.from(data);
  return dtype === 'F16' ? decodeF16(encodeF16(data)) : decodeBf16(encodeBf16(data));
}

// ---------------------------------------------------------------------------------------------
// Reading

/** One entry of a safetensors header. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  dataOffsets: [number, number];
}

/** A parsed safetensors header. */
export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Absolute byte position where the data section starts (8 + header length). */
  dataStart: number;
  /** Total file size in bytes. */
  fileSize: number;
}

/** Options for {@link readSafetensors}. */
export interface ReadSafetensorsOptions {
  /** Decode only tensors for which this returns true (others are still bounds-checked). */
  filter?: (name: string) => boolean;
}

function readExact(fd: number, len: number, pos: number): Uint8Array {
  const buf = new Uint8Array(len);
  readInto(fd, buf, pos);
  return buf;
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);
}

/** Why a file whose first 8 bytes give an impossible header length is not safetensors. */
function notSafetensorsWhy(lenBytes: Uint8Array, headerLen: number): string {
  const start = new TextDecoder().decode(lenBytes);
  // Git LFS pointers are small text files where the weights should be.
  if (start.startsWith('version ')) return 'it starts with "version " (a Git LFS pointer? fetch the real file with `git lfs pull`)';
  return `its first 8 bytes give a header length of ${headerLen} bytes, over the format's ${MAX_HEADER_BYTES / 1e6} MB limit`;
}

function parseHeaderFromFd(fd: number, path: string): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) {
    throw new Error(`${path}: truncated safetensors file: it has only ${fileSize} bytes, and the header length alone takes 8`);
  }
  const lenBytes = readExact(fd, 8, 0);
  const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) throw new Error(`${path}: not a safetensors file: ${notSafetensorsWhy(lenBytes, headerLen)}`);
  if (headerLen > fileSize - 8) {
    throw new Error(`${path}: truncated safetensors file: its header length says ${headerLen} bytes of header, but the file has only ${fileSize} bytes`);
  }
  const text = new TextDecoder().decode(readExact(fd, headerLen, 8));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // A download preallocated and cut short leaves zero bytes where the header should be.
    if (text.includes('\0')) throw new Error(`${path}: truncated or partly written safetensors file: its ${headerLen}-byte header holds zero bytes`);
    throw new Error(`${path}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${path}: safetensors header must be a JSON object`);
  }
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v === 'object' && v !== null) metadata = v as Record<string, string>;
      continue;
    }
    const e = v as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string' || !isIntArray(e.shape) || !isIntArray(e.data_offsets) || e.data_offsets.length !== 2) {
      throw new Error(`${path}: malformed header entry for tensor "${name}" (need dtype, shape, data_offsets)`);
    }
    const [begin, end] = e.data_offsets;
    if (end < begin) throw new Error(`${path}: tensor "${name}" has data_offsets [${begin}, ${end}] with end before begin`);
    if (end > dataSize) {
      throw new Error(
        `${path}: truncated file: tensor "${name}" needs data bytes up to ${end}, but the data section holds only ${dataSize}`,
      );
    }
    entries.set(name, { dtype: e.dtype, shape: e.shape, dataOffsets: [begin, end] });
  }
  return { entries, metadata, dataStart, fileSize };
}

/** Parse only the header of a safetensors file (cheap; validates offsets against the file size). */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openSync(path, 'r');
  try {
    return parseHeaderFromFd(fd, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Check one header entry: a supported dtype and data_offsets spanning exactly shape·bytes.
 * Throws naming the file and tensor; returns the dtype.
 */
export function checkEntry(path: string, name: string, e: SafetensorsEntry): SafetensorsDtype {
  if (!SUPPORTED.includes(e.dtype)) {
    throw new Error(`${path}: tensor "${name}" has unsupported dtype "${e.dtype}" (supported: ${SUPPORTED.join(', ')})`);
  }
  const dtype = e.dtype as SafetensorsDtype;
  const numel = e.shape.reduce((a, b) => a * b, 1);
  const nbytes = e.dataOffsets[1] - e.dataOffsets[0];
  if (nbytes !== numel * BYTES[dtype]) {
    throw new Error(
      `${path}: tensor "${name}" (${dtype} [${e.shape.join(', ')}]) needs ${numel * BYTES[dtype]} bytes but data_offsets span ${nbytes}`,
    );
  }
  return dtype;
}

/** Largest single positional read (Node caps one read near 2 GiB). */
const MAX_READ_BYTES = 1 << 30;
/** Values decoded per piece when widening F16 / BF16 (bounds the scratch buffer). */
const DECODE_PIECE = 1 << 23;

/**
 * Read `numel` values of `dtype` at absolute byte `position` of an open file, widened to float32
 * [numel]. Positional reads of at most 1 GiB; halves are decoded in pieces into the result, so
 * nothing but the result and a 16 MiB scratch buffer is allocated. Throws on a short read.
 */
export function readDecodedAt(fd: number, dtype: SafetensorsDtype, position: number, numel: number): Float32Array {
  const out = new Float32Array(numel);
  if (dtype === 'F32') {
    const bytes = new Uint8Array(out.buffer);
    for (let at = 0; at < bytes.length; at += MAX_READ_BYTES) readInto(fd, bytes.subarray(at, Math.min(bytes.length, at + MAX_READ_BYTES)), position + at);
    return out;
  }
  const scratch = new Uint16Array(Math.min(numel, DECODE_PIECE));
  for (let at = 0; at < numel; at += DECODE_PIECE) {
    const n = Math.min(DECODE_PIECE, numel - at);
    const bits = scratch.subarray(0, n);
    readInto(fd, new Uint8Array(bits.buffer, 0, n * 2), position + at * 2);
    decodeHalfInto(bits, dtype, out, at);
  }
  return out;
}

function readInto(fd: number, buf: Uint8Array, pos: number): void {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  if (got !== buf.length) throw new Error(`short read (${got} of ${buf.length} bytes at offset ${pos})`);
}

/**
 * Read a safetensors file into float32 arrays keyed by tensor name (names as stored).
 * Throws naming the file and tensor for truncated files, size mismatches and dtypes other than
 * F32 / F16 / BF16.
 */
export function readSafetensors(path: string, opts: ReadSafetensorsOptions = {}): StateDict {
  const fd = openSync(path, 'r');
  try {
    const header = parseHeaderFromFd(fd, path);
    const out: StateDict = new Map();
    for (const [name, e] of header.entries) {
      if (opts.filter && !opts.filter(name)) continue;
      const dtype = checkEntry(path, name, e);
      const numel = e.shape.reduce((a, b) => a * b, 1);
      out.set(name, { shape: [...e.shape], data: readDecodedAt(fd, dtype, header.dataStart + e.dataOffsets[0], numel) });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Options for {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** Storage dtype (default F32). Values are rounded to nearest even. */
  dtype?: SafetensorsDtype;
  /** String metadata stored under `__metadata__` (default `{format: 'pt'}`, which HF expects). */
  metadata?: Record<string, string>;
}

function encodeTensor(t: NamedArray, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const bits = dtype === 'F16' ? encodeF16(t.data) : encodeBf16(t.data);
  return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
}

function checkTensor(name: string, t: NamedArray): void {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== t.data.length) {
    throw new Error(`tensor "${name}" has shape [${t.shape.join(', ')}] (${numel} values) but holds ${t.data.length}`);
  }
}

/**
 * The bytes of a safetensors header for tensors of these shapes stored back to back in this
 * order: 8-byte little-endian length, then the JSON, padded with spaces so the data section
 * starts 8-byte aligned. Lets a writer stream tensor data after it without holding the tensors.
 */
export function safetensorsHeaderBytes(
  tensors: readonly (readonly [string, readonly number[]])[],
  dtype: SafetensorsDtype,
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, shape] of tensors) {
    const nbytes = shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    header[name] = { dtype, shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((8 + Buffer.byteLength(json)) % 8)) % 8;
  json += ' '.repeat(pad);
  const jsonBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + jsonBytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  return out;
}

/** Build the header bytes of in-memory tensors (checked against their shapes). */
function buildHeader(
  tensors: [string, NamedArray][],
  dtype: SafetensorsDtype,
  metadata: Record<string, string>,
): Uint8Array {
  for (const [name, t] of tensors) checkTensor(name, t);
  return safetensorsHeaderBytes(tensors.map(([name, t]) => [name, t.shape] as const), dtype, metadata);
}

function writeTensorsFile(path: string, tensors: [string, NamedArray][], dtype: SafetensorsDtype, metadata: Record<string, string>): number {
  const header = buildHeader(tensors, dtype, metadata);
  const fd = openSync(path, 'w');
  let total = 0;
  try {
    total += writeSync(fd, header);
    for (const [, t] of tensors) total += writeSync(fd, encodeTensor(t, dtype));
  } finally {
    closeSync(fd);
  }
  return total;
}

/** Write a state dict as one safetensors file (tensors in map order). */
export function writeSafetensors(path: string, sd: StateDict, opts: WriteSafetensorsOptions = {}): void {
  writeTensorsFile(path, [...sd], opts.dtype ?? 'F32', opts.metadata ?? { format: 'pt' });
}

/** Options for {@link writeShardedSafetensors}. */
export interface WriteShardedOptions extends WriteSafetensorsOptions {
  /** Upper bound on tensor bytes per shard (a single larger tensor gets a shard of its own). */
  maxShardBytes: number;
}

/** What {@link writeShardedSafetensors} wrote. */
export interface ShardedWriteResult {
  /** Absolute paths of the shard files, in order. */
  shards: string[];
  /** Absolute path of `model.safetensors.index.json`. */
  indexPath: string;
}

/** Name of the HF index file for sharded safetensors checkpoints. */
export const SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json';

/**
 * Write a state dict as HF-style shards `model-0000k-of-0000n.safetensors` plus
 * `model.safetensors.index.json` (`{metadata: {total_size}, weight_map: {name: file}}`).
 */
export function writeShardedSafetensors(dir: string, sd: StateDict, opts: WriteShardedOptions): ShardedWriteResult {
  const dtype = opts.dtype ?? 'F32';
  if (!(opts.maxShardBytes > 0)) throw new Error(`maxShardBytes must be positive (got ${opts.maxShardBytes})`);
  mkdirSync(dir, { recursive: true });
  const groups: [string, NamedArray][][] = [];
  let cur: [string, NamedArray][] = [];
  let curBytes = 0;
  let totalSize = 0;
  for (const [name, t] of sd) {
    const nbytes = t.data.length * BYTES[dtype];
    if (cur.length && curBytes + nbytes > opts.maxShardBytes) {
      groups.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push([name, t]);
    curBytes += nbytes;
    totalSize += nbytes;
  }
  if (cur.length) groups.push(cur);
  const n = groups.length;
  const pad = (k: number) => String(k).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  const shards: string[] = [];
  groups.forEach((g, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    writeTensorsFile(join(dir, file), g, dtype, opts.metadata ?? { format: 'pt' });
    for (const [name] of g) weightMap[name] = file;
    shards.push(resolve(dir, file));
  });
  const indexPath = resolve(dir, SAFETENSORS_INDEX_NAME);
  writeFileSync(indexPath, JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  return { shards, indexPath };
}

/** Result of {@link readShardedSafetensors}. */
export interface ShardedReadResult {
  tensors: StateDict;
  /** Absolute paths of the shard files read. */
  files: string[];
}

/**
 * Read a sharded checkpoint from its `model.safetensors.index.json`. Every tensor in the
 * weight map must be present in the shard it names; shards listed but absent are an error.
 */
export function readShardedSafetensors(indexPath: string, opts: ReadSafetensorsOptions = {}): ShardedReadResult {
  const dir = dirname(indexPath);
  const tensors: StateDict = new Map();
  const files: string[] = [];
  for (const [file, names] of readSafetensorsIndex(indexPath)) {
    const path = resolve(dir, file);
    const wanted = new Set(names.filter((n) => !opts.filter || opts.filter(n)));
    checkShardHolds(path, readSafetensorsHeader(path), wanted);
    const part = readSafetensors(path, { filter: (n) => wanted.has(n) });
    for (const [k, v] of part) tensors.set(k, v);
    files.push(path);
  }
  return { tensors, files };
}

/**
 * Parse `model.safetensors.index.json`: shard file name → the tensor names the weight map puts
 * there (shards in order of first mention). Throws for a malformed index and for shards listed
 * but absent from the folder.
 */
export function readSafetensorsIndex(indexPath: string): Map<string, string[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${indexPath}: cannot parse index (${(e as Error).message})`);
  }
  const wm = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new Error(`${indexPath}: missing "weight_map" object`);
  }
  const byFile = new Map<string, string[]>();
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== 'string' || file !== basename(file)) {
      throw new Error(`${indexPath}: weight_map entry for "${name}" must be a file name in the same folder (got ${JSON.stringify(file)})`);
    }
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file)!.push(name);
  }
  const dir = dirname(indexPath);
  const missing = [...byFile.keys()].filter((f) => !existsSync(join(dir, f)));
  if (missing.length) {
    throw new Error(`${indexPath}: shard file(s) listed in the index are missing: ${missing.join(', ')}`);
  }
  return byFile;
}

/** Throw naming the shard when the index puts tensors in it that its header lacks. */
export function checkShardHolds(path: string, header: SafetensorsHeader, names: Iterable<string>): void {
  const absent = [...names].filter((n) => !header.entries.has(n));
  if (absent.length) {
    throw new Error(`${path}: index says this shard holds ${absent.map((n) => `"${n}"`).join(', ')}, but it does not`);
  }
}
