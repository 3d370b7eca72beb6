/**
 * Shared pieces of the per-architecture converters: the converter interface, config-field
 * readers with named errors, tensor validation, and the index shuffles between HF layouts
 * (Linear [out, in], Conv1D [in, out]) and the canonical split weights (canonical.ts).
 */
import type { ModelConfig, ModelType } from '../config.ts';
import type { NamedArray, StateDict } from '../state-dict.ts';

/** What a tensor is, for random initialisation. */
export type TensorKind = 'matrix' | 'bias' | 'normGain' | 'normGainZero';

/** Name, shape and kind of one HF-native tensor. */
export interface TensorSpec {
  shape: number[];
  kind: TensorKind;
}

/** A converter between an architecture's HF checkpoint (native names) and canonical weights. */
export interface Architecture {
  /** HF `model_type`s it reads. */
  modelTypes: readonly ModelType[];
  /** Parse HF config.json fields (named errors on missing/bad fields). */
  parseConfig(raw: Record<string, unknown>, modelType: ModelType): ModelConfig;
  /** HF config.json fields for a config (the inverse of parseConfig). */
  configToHF(cfg: ModelConfig): Record<string, unknown>;
  /** Every HF-native tensor a checkpoint of this config holds, in a fixed order. */
  hfTensors(cfg: ModelConfig): Map<string, TensorSpec>;
  /** Map raw file names to native ones (prefixes, buffers, a tied head stored twice). */
  normalizeNames(raw: StateDict, cfg: ModelConfig, source: string): StateDict;
  /** Native (validated) → canonical split weights (composed by {@link composeCanonical}). */
  toCanonical(cfg: ModelConfig, sd: StateDict): StateDict;
  /** Native name of the token embedding [V, d]. */
  embedName: string;
  /** Native name of the untied unembedding [V, d] (absent from tied checkpoints). */
  headName: string;
  /** Prefix every native tensor of block `l` starts with (e.g. `h.3.`); no other tensor does. */
  blockPrefix(l: number): string;
  /**
   * Native → canonical tensors of block `l` only (`blocks.{l}.*`). Reads only the native tensors
   * under {@link Architecture.blockPrefix}(l), so `sd` may hold layer l's tensors alone.
   */
  blockToCanonical(cfg: ModelConfig, sd: StateDict, l: number): StateDict;
  /**
   * Native → canonical non-block tensors except the embedding and unembedding matrices
   * (`pos_embed.W_pos` [nCtx, d], `ln_final.w` / `.b` [d], `unembed.b_U` [V] as the config has them).
   */
  globalsToCanonical(cfg: ModelConfig, sd: StateDict): StateDict;
  /** Canonical → native, for saving a trained model in HF layout. */
  fromCanonical(cfg: ModelConfig, w: StateDict): StateDict;
}

/** A numeric config field (first of `keys` present), or a named error. */
export function need(r: Record<string, unknown>, keys: string[]): number {
  for (const k of keys) {
    const v = r[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  throw new Error(`config.json: missing numeric field ${keys.map((k) => `"${k}"`).join(' or ')}`);
}

/** An optional numeric field; a present non-number is an error. */
export function optNum(r: Record<string, unknown>, key: string, dflt?: number): number | undefined {
  const v = r[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`config.json: field "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** An optional boolean field; a present non-boolean is an error. */
export function optBool(r: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = r[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new Error(`config.json: field "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Token ids (first one of a list). */
export function tokenIds(r: Record<string, unknown>, cfg: { bosTokenId?: number; eosTokenId?: number }): void {
  const first = (v: unknown) => (typeof v === 'number' ? v : Array.isArray(v) && typeof v[0] === 'number' ? (v[0] as number) : undefined);
  const bos = first(r.bos_token_id);
  const eos = first(r.eos_token_id);
  if (bos !== undefined) cfg.bosTokenId = bos;
  if (eos !== undefined) cfg.eosTokenId = eos;
}

/** Divisibility check with a message naming both HF fields. */
export function mustDivide(a: number, aKey: string, b: number, bKey: string): void {
  if (b % a !== 0) throw new Error(`config.json: ${aKey} (${a}) does not divide ${bKey} (${b})`);
}

/** Refuse a RoPE scaling scheme relp does not implement. */
export function refuseRopeScaling(r: Record<string, unknown>): void {
  const s = r.rope_scaling;
  if (s === undefined || s === null) return;
  const type = typeof s === 'object' ? ((s as Record<string, unknown>).rope_type ?? (s as Record<string, unknown>).type) : s;
  if (type === 'default') return;
  throw new Error(`config.json: rope_scaling ${JSON.stringify(s)} is not supported (only plain RoPE)`);
}

/**
 * Check a state dict against specs: one error listing every missing tensor (by name) and every
 * wrong shape (expected vs got). Extra tensors are ignored.
 */
export function validateTensors(sd: StateDict, specs: Map<string, { shape: number[] }>): void {
  throwProblems(tensorProblems((n) => {
    const t = sd.get(n);
    return t && { shape: t.shape, numel: t.data.length };
  }, specs));
}

/**
 * {@link validateTensors} for tensors known only by their shapes (headers not yet read): the
 * same named errors for missing tensors and wrong shapes.
 */
export function validateShapes(shapes: Map<string, readonly number[]>, specs: Map<string, { shape: number[] }>): void {
  throwProblems(tensorProblems((n) => {
    const shape = shapes.get(n);
    return shape && { shape, numel: shape.reduce((a, b) => a * b, 1) };
  }, specs));
}

function tensorProblems(lookup: (name: string) => { shape: readonly number[]; numel: number } | undefined, specs: Map<string, { shape: number[] }>): string[] {
  const problems: string[] = [];
  for (const [name, { shape }] of specs) {
    const t = lookup(name);
    if (!t) {
      problems.push(`missing tensor "${name}" (expected shape [${shape.join(', ')}])`);
      continue;
    }
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      problems.push(`tensor "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    } else if (t.numel !== shape.reduce((a, b) => a * b, 1)) {
      problems.push(`tensor "${name}" holds ${t.numel} values, expected ${shape.reduce((a, b) => a * b, 1)}`);
    }
  }
  return problems;
}

function throwProblems(problems: string[]): void {
  if (problems.length) throw new Error(`weights do not match config.json:\n  - ${problems.join('\n  - ')}`);
}

/**
 * The whole native → canonical conversion from an architecture's parts: `embed.W_E`, the globals
 * (`pos_embed.W_pos` first), every block, then `unembed.W_U` [d, V] (the head's transpose) when untied.
 */
export function composeCanonical(a: Architecture, cfg: ModelConfig, sd: StateDict): StateDict {
  const w: StateDict = new Map();
  w.set('embed.W_E', get(sd, a.embedName));
  const g = a.globalsToCanonical(cfg, sd);
  const pos = g.get('pos_embed.W_pos');
  if (pos) w.set('pos_embed.W_pos', pos);
  for (let l = 0; l < cfg.nLayers; l++) for (const [k, v] of a.blockToCanonical(cfg, sd, l)) w.set(k, v);
  for (const [k, v] of g) if (!w.has(k)) w.set(k, v);
  if (!cfg.tiedEmbeddings) w.set('unembed.W_U', transpose2d(get(sd, a.headName)));
  return w;
}

/** Element-wise equality (NaN equals NaN). */
export function sameArray(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/**
 * Resolve an unembedding stored under `headName` beside the embedding `embedName` when the model
 * is tied: dropped when equal, used as the embedding when that is absent, an error when it differs.
 */
export function resolveTiedHead(out: StateDict, head: NamedArray | undefined, headName: string, embedName: string, source: string): void {
  if (!head) return;
  const e = out.get(embedName);
  if (!e) out.set(embedName, head);
  else if (e.shape.join() !== head.shape.join() || !sameArray(e.data, head.data)) {
    throw new Error(`${source}: "${headName}" differs from "${embedName}" but config.json says the embeddings are tied (tie_word_embeddings); set tie_word_embeddings false for an untied unembedding`);
  }
}

/** Get a tensor that validation guaranteed. */
export function get(sd: StateDict, name: string): NamedArray {
  const t = sd.get(name);
  if (!t) throw new Error(`internal: tensor "${name}" missing after validation`);
  return t;
}

/** A plain copy with a new shape. */
export function reshaped(t: NamedArray, shape: number[]): NamedArray {
  return { shape, data: t.data };
}

/** Transpose a 2-D [rows, cols] array into [cols, rows]. */
export function transpose2d(t: NamedArray): NamedArray {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  transposeInto(t.data, r, c, out);
  return { shape: [c, r], data: out };
}

/** Tile edge of the blocked transpose: 32×32 floats (4 KB) keep both sides in cache. */
const TILE = 32;

/**
 * out[j·r + i] = a[i·c + j] for an [r, c] row-major array, tile by tile: a plain double loop
 * writes with stride r and misses the cache on every element (3–5× slower on large weights,
 * which a streamed model converts block by block on every pass).
 */
function transposeInto(a: Float32Array, r: number, c: number, out: Float32Array): void {
  for (let i0 = 0; i0 < r; i0 += TILE) {
    const i1 = Math.min(r, i0 + TILE);
    for (let j0 = 0; j0 < c; j0 += TILE) {
      const j1 = Math.min(c, j0 + TILE);
      for (let i = i0; i < i1; i++) {
        const src = i * c;
        for (let j = j0; j < j1; j++) out[j * r + i] = a[src + j];
      }
    }
  }
}

/**
 * Heads from an HF Linear weight [out, in] whose output row of head h, dim j is `row(h, j)`:
 * [nH, in, dh] with out[h][i][j] = W[row(h, j)][i].
 */
export function headsFromRows(W: NamedArray, nH: number, dh: number, row: (h: number, j: number) => number): NamedArray {
  const dIn = W.shape[1];
  const out = new Float32Array(nH * dIn * dh);
  // Tiled over (j, i) like transposeInto: head h's block out[h] is [dIn, dh], filled from dh rows of W.
  for (let h = 0; h < nH; h++) {
    const base = h * dIn * dh;
    for (let j0 = 0; j0 < dh; j0 += TILE) {
      const j1 = Math.min(dh, j0 + TILE);
      for (let i0 = 0; i0 < dIn; i0 += TILE) {
        const i1 = Math.min(dIn, i0 + TILE);
        for (let j = j0; j < j1; j++) {
          const r = row(h, j) * dIn;
          for (let i = i0; i < i1; i++) out[base + i * dh + j] = W.data[r + i];
        }
      }
    }
  }
  return { shape: [nH, dIn, dh], data: out };
}

/** Inverse of {@link headsFromRows}: write heads [nH, in, dh] into rows of W [out, in] (in place). */
export function headsToRows(heads: NamedArray, W: Float32Array, row: (h: number, j: number) => number): void {
  const [nH, dIn, dh] = heads.shape;
  for (let h = 0; h < nH; h++) for (let j = 0; j < dh; j++) {
    const r = row(h, j) * dIn;
    for (let i = 0; i < dIn; i++) W[r + i] = heads.data[(h * dIn + i) * dh + j];
  }
}

/** Head biases [nH, dh] from a flat bias whose entry of head h, dim j is `idx(h, j)`. */
export function headBias(b: NamedArray, nH: number, dh: number, idx: (h: number, j: number) => number): NamedArray {
  const out = new Float32Array(nH * dh);
  for (let h = 0; h < nH; h++) for (let j = 0; j < dh; j++) out[h * dh + j] = b.data[idx(h, j)];
  return { shape: [nH, dh], data: out };
}

/** Inverse of {@link headBias} (in place). */
export function headBiasInto(hb: NamedArray, out: Float32Array, idx: (h: number, j: number) => number): void {
  const [nH, dh] = hb.shape;
  for (let h = 0; h < nH; h++) for (let j = 0; j < dh; j++) out[idx(h, j)] = hb.data[h * dh + j];
}

/** W_O [h, dh, d] from an HF Linear o_proj [d, h·dh] (the transpose). */
export function outFromLinear(W: NamedArray, nH: number, dh: number): NamedArray {
  const t = transpose2d(W); // [h·dh, d]
  return { shape: [nH, dh, W.shape[0]], data: t.data };
}

/** HF Linear o_proj [d, h·dh] from W_O [h, dh, d]. */
export function outToLinear(WO: NamedArray): NamedArray {
  const [h, dh, d] = WO.shape;
  return transpose2d({ shape: [h * dh, d], data: WO.data });
}

/** Strip a known prefix from every name (names without it stay). */
export function stripPrefix(raw: StateDict, prefix: string, source: string): StateDict {
  const out: StateDict = new Map();
  for (const [name, t] of raw) {
    const canon = name.startsWith(prefix) ? name.slice(prefix.length) : name;
    if (out.has(canon)) throw new Error(`${source}: tensor "${canon}" appears both with and without the "${prefix}" prefix`);
    out.set(canon, t);
  }
  return out;
}
