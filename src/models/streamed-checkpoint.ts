/**
 * A checkpoint read block by block ({@link BlockSource}): at open only config.json and the
 * safetensors headers are read and every tensor is checked against the config (names, shapes,
 * dtypes, byte sizes, shards) without reading data; then each call reads just the bytes it needs
 * with positional reads, widens them to float32 tensor by tensor, and keeps nothing afterwards
 * (the OS page cache is the cache). Works for files and tensors larger than 2 GiB.
 *
 * Layouts: `model.safetensors` or sharded `model.safetensors.index.json` (safetensors only).
 */
import { closeSync, openSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BlockSource } from './block-source.ts';
import type { ModelConfig } from './config.ts';
import type { NamedArray, StateDict } from './state-dict.ts';
import { architecture, hfTensorSpecs, normalizeHFNames, type Architecture } from './architectures/index.ts';
import { findWeights, isIgnoredBuffer, readCheckpointConfig, validateNativeShapes } from './checkpoint.ts';
import { checkpointSha256 } from '../io/file-hash.ts';
import {
  SAFETENSORS_DTYPE_BYTES,
  SAFETENSORS_INDEX_NAME,
  checkEntry,
  checkShardHolds,
  readDecodedAt,
  readSafetensorsHeader,
  readSafetensorsIndex,
  type SafetensorsDtype,
  type SafetensorsEntry,
} from '../io/safetensors.ts';

/** Where one tensor's bytes are: which shard, at which absolute byte, in which dtype. */
interface Located {
  /** Index into the shard list. */
  shard: number;
  /** Name as stored in the file (for messages). */
  rawName: string;
  entry: SafetensorsEntry;
  /** Absolute byte position of the tensor's first value. */
  position: number;
  dtype: SafetensorsDtype;
}

/** The safetensors files of a checkpoint and every tensor the files hold, by raw name. */
interface Layout {
  /** Absolute paths of the files weights are read through (index first when sharded). */
  weightFiles: string[];
  /** Absolute paths of the safetensors files (the shards). */
  shards: string[];
  tensors: Map<string, Omit<Located, 'dtype'>>;
  /** The weight file errors name (model.safetensors or the index). */
  source: string;
}

/**
 * Open a checkpoint folder for block-by-block reading. Reads config.json and every header only;
 * throws (naming the file and tensor) for a missing config, no weights, ONNX weights, a missing
 * shard, a missing or misshapen tensor, an unsupported dtype or a truncated file.
 */
export async function openStreamedCheckpoint(dir: string): Promise<BlockSource> {
  const root = resolve(dir);
  const { config, path: configPath } = await readCheckpointConfig(root);
  const found = findWeights(root);
  if (found.startsWith('onnx/')) {
    throw new Error(`${join(root, found)}: ONNX weights cannot be streamed block by block; use model.safetensors (single or sharded)`);
  }
  const layout = readLayout(root, found);
  const located = locateNative(layout, config);
  return new StreamedCheckpoint(config, configPath, layout, located);
}

/** Parse the headers of a single-file or sharded safetensors checkpoint (no tensor data). */
function readLayout(root: string, found: string): Layout {
  const source = join(root, found);
  const tensors: Layout['tensors'] = new Map();
  const add = (shard: number, path: string, names: readonly string[]) => {
    const header = readSafetensorsHeader(path);
    checkShardHolds(path, header, names);
    for (const rawName of names) {
      const entry = header.entries.get(rawName)!;
      tensors.set(rawName, { shard, rawName, entry, position: header.dataStart + entry.dataOffsets[0] });
    }
  };
  if (found !== SAFETENSORS_INDEX_NAME) {
    add(0, source, [...readSafetensorsHeader(source).entries.keys()]);
    return { weightFiles: [source], shards: [source], tensors, source };
  }
  const shards: string[] = [];
  for (const [file, names] of readSafetensorsIndex(source)) {
    const path = resolve(root, file);
    add(shards.length, path, names);
    shards.push(path);
  }
  return { weightFiles: [source, ...shards], shards, tensors, source };
}

/**
 * Native name → location of every tensor the config needs: buffers skipped, names normalised by
 * the architecture (prefixes; a tied head stored twice is ignored), then shapes, dtypes and byte
 * sizes checked against the config's HF tensor specs.
 */
function locateNative(layout: Layout, cfg: ModelConfig): Map<string, Located> {
  // Stand-ins carry each header's shape through the architecture's own name mapping; all hold
  // no data, so a duplicated tied head compares equal and is dropped (its bytes are never read).
  const byStandIn = new Map<NamedArray, Omit<Located, 'dtype'>>();
  const raw: StateDict = new Map();
  for (const [name, loc] of layout.tensors) {
    if (isIgnoredBuffer(name)) continue;
    const standIn: NamedArray = { shape: [...loc.entry.shape], data: new Float32Array(0) };
    byStandIn.set(standIn, loc);
    raw.set(name, standIn);
  }
  const native = normalizeHFNames(raw, cfg, layout.source);
  validateNativeShapes(new Map([...native].map(([n, t]) => [n, t.shape])), cfg, layout.source);
  const out = new Map<string, Located>();
  for (const name of hfTensorSpecs(cfg).keys()) {
    const loc = byStandIn.get(native.get(name)!)!;
    out.set(name, { ...loc, dtype: checkEntry(layout.shards[loc.shard], loc.rawName, loc.entry) });
  }
  return out;
}

class StreamedCheckpoint implements BlockSource {
  readonly files: string[];
  readonly bytesOnDisk: number;
  private readonly arch: Architecture;
  private readonly fds: number[];
  private readonly blockNames: string[][];
  private readonly globalNames: string[];
  private digest: string | undefined;
  private closed = false;

  constructor(
    readonly config: ModelConfig,
    configPath: string,
    private readonly layout: Layout,
    private readonly located: Map<string, Located>,
  ) {
    this.files = [configPath, ...layout.weightFiles];
    this.bytesOnDisk = layout.shards.reduce((a, p) => a + statSync(p).size, 0);
    this.arch = architecture(config.modelType);
    const names = [...located.keys()];
    this.blockNames = Array.from({ length: config.nLayers }, (_, l) => names.filter((n) => n.startsWith(this.arch.blockPrefix(l))));
    const inBlocks = new Set(this.blockNames.flat());
    this.globalNames = names.filter((n) => !inBlocks.has(n) && n !== this.arch.embedName && n !== this.arch.headName);
    this.fds = layout.shards.map((p) => openSync(p, 'r'));
  }

  readBlock(l: number): StateDict {
    if (!Number.isInteger(l) || l < 0 || l >= this.config.nLayers) {
      throw new Error(`${this.layout.source}: block ${l} does not exist (the model has ${this.config.nLayers} blocks)`);
    }
    return this.arch.blockToCanonical(this.config, this.readNative(this.blockNames[l]), l);
  }

  readGlobals(): StateDict {
    return this.arch.globalsToCanonical(this.config, this.readNative(this.globalNames));
  }

  readEmbeddingRows(ids: readonly number[]): Float32Array {
    const loc = this.loc(this.arch.embedName);
    const [V, d] = loc.entry.shape;
    const out = new Float32Array(ids.length * d);
    ids.forEach((id, k) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new Error(`${this.layout.shards[loc.shard]}: token id ${id} is outside the embedding "${loc.rawName}" [${V}, ${d}]`);
      }
      out.set(this.readAt(loc, id * d, d), k * d);
    });
    return out;
  }

  readUnembedRows(v0: number, v1: number): Float32Array {
    const loc = this.loc(this.config.tiedEmbeddings ? this.arch.embedName : this.arch.headName);
    const [V, d] = loc.entry.shape;
    if (!Number.isInteger(v0) || !Number.isInteger(v1) || v0 < 0 || v1 < v0 || v1 > V) {
      throw new Error(`${this.layout.shards[loc.shard]}: rows [${v0}, ${v1}) are outside the unembedding "${loc.rawName}" [${V}, ${d}]`);
    }
    return this.readAt(loc, v0 * d, (v1 - v0) * d);
  }

  hash(): string {
    this.digest ??= checkpointSha256(this.files);
    return this.digest;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds) closeSync(fd);
  }

  private loc(name: string): Located {
    const loc = this.located.get(name);
    if (!loc) throw new Error(`internal: tensor "${name}" was not located at open`);
    return loc;
  }

  /** `numel` values of a tensor from value index `from`, widened to float32. */
  private readAt(loc: Located, from: number, numel: number): Float32Array {
    if (this.closed) throw new Error(`${this.layout.source}: checkpoint is closed`);
    return readDecodedAt(this.fds[loc.shard], loc.dtype, loc.position + from * SAFETENSORS_DTYPE_BYTES[loc.dtype], numel);
  }

  /** Native tensors by native name, read one at a time. */
  private readNative(names: readonly string[]): StateDict {
    const sd: StateDict = new Map();
    for (const n of names) {
      const loc = this.loc(n);
      const shape = [...loc.entry.shape];
      sd.set(n, { shape, data: this.readAt(loc, 0, shape.reduce((a, b) => a * b, 1)) });
    }
    return sd;
  }
}
