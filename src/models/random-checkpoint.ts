/**
 * Random HF checkpoints of any size, streamed to disk: the model is never in memory. Each shard's
 * header is written first (offsets follow from the shapes), then every tensor is generated and
 * written in pieces of 4 Mi values, so memory stays at a few MiB whatever the model (an 8B-parameter
 * BF16 checkpoint is 16 GB on disk and about 20 MB in RAM).
 *
 * Values are deterministic from a seed and the tensor's position in `hfTensorSpecs` order (the
 * same bytes whatever the sharding): matrices and biases normal with std 0.02, norm gains
 * 1 + 0.1·N(0, 1) (Gemma's (1 + w) gains 0.1·N(0, 1)), as {@link randomStateDict}. Speed: each
 * 32-bit xorshift draw picks two entries of a 65,536-entry table of normal quantiles already
 * encoded in the storage dtype, so generation runs near disk speed.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { configFromHF, hfTensorSpecs } from './architectures/index.ts';
import type { TensorKind } from './architectures/common.ts';
import type { ModelConfig } from './config.ts';
import { SAFETENSORS_DTYPE_BYTES, SAFETENSORS_INDEX_NAME, f32ToBf16Bits, f32ToF16Bits, safetensorsHeaderBytes, type SafetensorsDtype } from '../io/safetensors.ts';

const GPT2_BASE = {
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_inner: null, n_positions: 1024, n_ctx: 1024, vocab_size: 50257,
  layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: true, bos_token_id: 50256, eos_token_id: 50256,
};

/** HF config.json values of the named shapes (REFERENCE §11); dtype and shards as on the hub. */
export const CHECKPOINT_SHAPES: Record<string, { config: Record<string, unknown>; dtype: SafetensorsDtype; shards: number }> = {
  'gpt2-small': { config: { ...GPT2_BASE, n_layer: 12, n_head: 12, n_embd: 768 }, dtype: 'F32', shards: 1 },
  'gpt2-large': { config: { ...GPT2_BASE, n_layer: 36, n_head: 20, n_embd: 1280 }, dtype: 'F32', shards: 1 },
  'gemma2-2b': {
    config: {
      model_type: 'gemma2', architectures: ['Gemma2ForCausalLM'], num_hidden_layers: 26, hidden_size: 2304, num_attention_heads: 8,
      num_key_value_heads: 4, head_dim: 256, intermediate_size: 9216, vocab_size: 256000, max_position_embeddings: 8192,
      hidden_activation: 'gelu_pytorch_tanh', hidden_act: 'gelu_pytorch_tanh', query_pre_attn_scalar: 256,
      attn_logit_softcapping: 50.0, final_logit_softcapping: 30.0, sliding_window: 4096, rms_norm_eps: 1e-6,
      rope_theta: 10000.0, tie_word_embeddings: true, bos_token_id: 2, eos_token_id: 1, pad_token_id: 0,
    },
    dtype: 'BF16',
    shards: 1,
  },
  'llama3-8b': {
    config: {
      model_type: 'llama', architectures: ['LlamaForCausalLM'], num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32,
      num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256, max_position_embeddings: 8192, rms_norm_eps: 1e-5,
      rope_theta: 500000.0, hidden_act: 'silu', tie_word_embeddings: false, attention_bias: false, mlp_bias: false,
      bos_token_id: 128000, eos_token_id: 128001,
    },
    dtype: 'BF16',
    shards: 4,
  },
};

/** Options for {@link writeRandomCheckpoint}. */
export interface RandomCheckpointOptions {
  /** HF config.json fields (e.g. `CHECKPOINT_SHAPES['llama3-8b'].config`, with overrides). */
  config: Record<string, unknown>;
  /** Storage dtype (default F32). */
  dtype?: SafetensorsDtype;
  /** 1: `model.safetensors`; N > 1: `model-0000k-of-0000N.safetensors` + index (default 1). */
  shards?: number;
  /** Seed of the values (default 0). */
  seed?: number;
  /** Called after each tensor is written (bytes so far, total bytes). */
  onProgress?: (written: number, total: number) => void;
}

/** What {@link writeRandomCheckpoint} wrote. */
export interface RandomCheckpointResult {
  config: ModelConfig;
  /** Absolute paths: config.json, then the index (sharded), then the safetensors files. */
  files: string[];
  /** Tensor bytes written (all shards). */
  tensorBytes: number;
  parameters: number;
}

interface Planned {
  name: string;
  shape: number[];
  kind: TensorKind;
  /** Position in hfTensorSpecs order: seeds its values. */
  index: number;
  numel: number;
}

/**
 * Write config.json and random weights for `opts.config` into `dir` (created if needed), tensor
 * by tensor, never holding more than one piece of one tensor. The config is parsed and checked
 * (configFromHF) before anything is written.
 */
export function writeRandomCheckpoint(dir: string, opts: RandomCheckpointOptions): RandomCheckpointResult {
  const cfg = configFromHF(opts.config);
  const dtype = opts.dtype ?? 'F32';
  const bytesPer = SAFETENSORS_DTYPE_BYTES[dtype];
  const plan: Planned[] = [...hfTensorSpecs(cfg)].map(([name, s], index) => ({ name, shape: s.shape, kind: s.kind, index, numel: s.shape.reduce((a, b) => a * b, 1) }));
  const total = plan.reduce((a, t) => a + t.numel * bytesPer, 0);
  const groups = shardGroups(plan, bytesPer, opts.shards ?? 1);
  const root = resolve(dir);
  mkdirSync(root, { recursive: true });
  const configPath = join(root, 'config.json');
  writeFileSync(configPath, JSON.stringify({ ...opts.config, torch_dtype: TORCH_DTYPE[dtype] }, null, 2));
  const pad = (k: number) => String(k).padStart(5, '0');
  const names = groups.length === 1 ? ['model.safetensors'] : groups.map((_, i) => `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  const gen = new ValueWriter(dtype, opts.seed ?? 0);
  let written = 0;
  groups.forEach((g, i) => {
    written = writeShard(join(root, names[i]), g, gen, written, (w) => opts.onProgress?.(w, total));
  });
  const files = [configPath, ...names.map((n) => join(root, n))];
  if (groups.length > 1) {
    const weightMap = Object.fromEntries(groups.flatMap((g, i) => g.map((t) => [t.name, names[i]])));
    const indexPath = join(root, SAFETENSORS_INDEX_NAME);
    writeFileSync(indexPath, JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
    files.splice(1, 0, indexPath);
  }
  return { config: cfg, files, tensorBytes: total, parameters: plan.reduce((a, t) => a + t.numel, 0) };
}

const TORCH_DTYPE: Record<SafetensorsDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Split tensors (in order) into `n` runs of about equal bytes; empty runs are dropped. */
function shardGroups(plan: Planned[], bytesPer: number, n: number): Planned[][] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`shards must be a positive integer (got ${n})`);
  const total = plan.reduce((a, t) => a + t.numel * bytesPer, 0);
  const groups: Planned[][] = Array.from({ length: n }, () => []);
  let start = 0;
  for (const t of plan) {
    const bytes = t.numel * bytesPer;
    // A tensor goes to the shard its middle byte falls in: runs of ~total/n bytes, in order.
    groups[Math.min(n - 1, Math.floor(((start + bytes / 2) * n) / Math.max(total, 1)))].push(t);
    start += bytes;
  }
  return groups.filter((g) => g.length > 0);
}

/** Write one safetensors file: header with precomputed offsets, then each tensor in pieces. */
function writeShard(path: string, tensors: Planned[], gen: ValueWriter, written: number, progress: (w: number) => void): number {
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, safetensorsHeaderBytes(tensors.map((t) => [t.name, t.shape] as const), gen.dtype));
    for (const t of tensors) {
      written += gen.write(fd, t);
      progress(written);
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
}

/** Values per piece written (16 MiB of F32, 8 MiB of halves). */
const PIECE = 1 << 22;
const TABLE = 1 << 16;

/** Generates a tensor's values in the storage dtype, piece by piece, straight into the file. */
class ValueWriter {
  private readonly tables = new Map<TensorKind, Uint16Array | Uint32Array>();
  private readonly piece: Uint16Array | Uint32Array;

  constructor(
    readonly dtype: SafetensorsDtype,
    private readonly seed: number,
  ) {
    this.piece = dtype === 'F32' ? new Uint32Array(PIECE) : new Uint16Array(PIECE);
  }

  /** Write tensor `t`'s values; returns the bytes written. */
  write(fd: number, t: Planned): number {
    const table = this.table(t.kind);
    let x = seedState(this.seed, t.index);
    const out = this.piece;
    for (let at = 0; at < t.numel; at += PIECE) {
      const n = Math.min(PIECE, t.numel - at);
      for (let i = 0; i < n; i += 2) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[i] = table[x & 0xffff];
        if (i + 1 < n) out[i + 1] = table[x >>> 16];
      }
      writeAll(fd, new Uint8Array(out.buffer, 0, n * out.BYTES_PER_ELEMENT));
    }
    return t.numel * out.BYTES_PER_ELEMENT;
  }

  /** mean + std·Φ⁻¹((i + ½) / 65536) for i < 65536, encoded in the storage dtype. */
  private table(kind: TensorKind): Uint16Array | Uint32Array {
    let t = this.tables.get(kind);
    if (t) return t;
    const [mean, std] = kind === 'normGain' ? [1, 0.1] : kind === 'normGainZero' ? [0, 0.1] : [0, 0.02];
    const f32 = new Float32Array(TABLE);
    for (let i = 0; i < TABLE; i++) f32[i] = mean + std * normalQuantile((i + 0.5) / TABLE);
    if (this.dtype === 'F32') t = new Uint32Array(f32.buffer);
    else t = Uint16Array.from(f32, this.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits);
    this.tables.set(kind, t);
    return t;
  }
}

/** A nonzero xorshift32 state from the seed and the tensor index (splitmix-style mixing). */
function seedState(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b9) + Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return z === 0 ? 0x6d2b79f5 : z;
}

/** Φ⁻¹(p) for 0 < p < 1 (Acklam's rational approximation, relative error below 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}
