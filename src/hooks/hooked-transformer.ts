/**
 * HookedTransformer: a transformer of any supported architecture (GPT-2, GPT-NeoX, Llama / Qwen2 /
 * Mistral, Gemma-2) with TransformerLens hook points on TensorFlow.js.
 *
 * ```ts
 * const model = HookedTransformer.fromStateDict(cfg, stateDict);      // HF-native names
 * const logits = model.forward([[15496, 995]]);                       // [batch, pos, vocab]
 * const { logits, cache } = model.runWithCache(tokens, { names: ['blocks.0.attn.hook_z'] });
 * const out = model.runWithHooks(tokens, [{ name: 'blocks.1.hook_resid_pre', fn: (x) => tf.zerosLike(x) }]);
 * const g = model.runWithCacheAndGrads(tokens, (logits) => logits.mean(), { names: [...] });
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { checkConfig, resolveConfig, type ConfigInput, type ModelConfig } from '../models/config.ts';
import type { StateDict } from '../models/state-dict.ts';
import { canonicalToHF, hfToCanonical } from '../models/architectures/index.ts';
import { canonicalShapes, validateCanonical, type CanonicalWeights } from '../models/canonical.ts';
import type { RuleSet } from '../rules/rules.ts';
import { estimateBytes, guardMemory, heapLimitBytes, type WorkloadShape } from '../backend/memory-guard.ts';
import { compileHooks, type Hook } from './hook-point.ts';
import { allHookNames, hookShape, parseHookName } from './hook-points.ts';
import type { ActivationCache } from './activation-cache.ts';
import { buildForwardTensors, embed, runBlocks, type ForwardTensors } from '../models/forward.ts';
import { patternFromQK } from '../models/parts/attention.ts';
import { rotaryTables, type RotaryTables } from '../models/parts/rotary.ts';
import { graphTopology, type GraphTopology } from '../models/topology.ts';
import type { BlockSource } from '../models/block-source.ts';
import { StreamedWeights, onTape, type StreamStats } from './streamed-weights.ts';
import { cachingHooks, streamedCacheAndGrads, streamedForward, type StreamedEngine, type StreamedOptions } from './streamed-forward.ts';

/** Token input: ids as nested arrays [batch][pos], or an int32 tensor [batch, pos]. */
export type TokenInput = number[][] | tf.Tensor2D;

/** Options shared by every forward call. */
export interface ForwardOptions {
  /** Hooks that read or replace activations; gone after the call. */
  hooks?: Hook[];
  /** LRP rules for the backward pass (forward values are unchanged). */
  rules?: RuleSet;
  /** Start at this block from `resid` (blocks.{l}.hook_resid_pre [batch, pos, d_model]). */
  startAtLayer?: number;
  /** Residual stream to resume from when `startAtLayer` is set, [batch, pos, d_model]. */
  resid?: tf.Tensor;
  /** Embed with a one-hot matmul so `embed.W_E` gets gradients (training on wasm). */
  oneHotEmbed?: boolean;
  /** Return logits for the last position only, [batch, 1, vocab] (faster; ln_final hooks see [batch, 1, d_model]). */
  lastPositionOnly?: boolean;
  /**
   * Unembed only these vocabulary ids: logits [batch, pos, ids.length], columns in this order.
   * Metrics that read a few tokens (logit differences) skip the rest of the unembedding, the
   * largest matmul of a sweep and, on a streamed model, the largest read.
   */
  logitIds?: readonly number[];
  /**
   * With `startAtLayer` and `resid` holding only the positions after a prefix: the prefix's cached
   * keys and values per layer (`prefixKV[l] = {k, v}`, each [batch, prefix, kv_head, d_head], from
   * the hooks {@link HookedTransformer.kvCacheHooks} names: keys after rotary). Hooks then see
   * suffix-shaped activations.
   */
  prefixKV?: ({ k: tf.Tensor; v: tf.Tensor } | undefined)[];
  /**
   * Give each head its own q/k/v input residual (TransformerLens `use_split_qkv_input`):
   * enables `attn.hook_q_input` [batch, pos, head, d_model], `hook_k_input` / `hook_v_input`
   * [batch, pos, kv_head, d_model] and the per-head norm scales `ln1.hook_scale_q|k|v`.
   */
  splitQkvInput?: boolean;
}

/** Options of {@link HookedTransformer.runWithCache}. */
export interface CacheOptions extends Omit<ForwardOptions, 'hooks'> {
  /** Hook names to cache, or a predicate; default: every hook point except hook_result. */
  names?: string[] | ((name: string) => boolean);
  /** Extra hooks to run as well (e.g. patches); cached values are taken after them. */
  hooks?: Hook[];
  /** Hooks run after the caching (and gradient-probe) hooks at the same point. */
  postHooks?: Hook[];
}

/** Result of {@link HookedTransformer.runWithCacheAndGrads}. */
export interface CacheAndGrads {
  /** Logits [batch, pos, vocab]. */
  logits: tf.Tensor3D;
  /** The scalar metric value. */
  value: tf.Scalar;
  /** Activations at the requested hooks. */
  cache: ActivationCache;
  /** d metric / d activation at the requested hooks (LRP-modified when `rules` are set). */
  grads: ActivationCache;
}

/** A scalar metric of the logits, e.g. a logit difference. */
export type MetricFn = (logits: tf.Tensor3D) => tf.Scalar;

/** Options of a streamed model ({@link HookedTransformer.fromBlockSource}). */
export interface StreamOptions {
  /** Floats of one unembedding chunk [rows, d_model] (default 16M: 64 MB). */
  chunkFloats?: number;
  /**
   * How many blocks (the first ones) stay uploaded between passes (default 0: every block is
   * uploaded each time it runs). `loadModel` keeps as many as the memory guard allows.
   */
  keepBlocks?: number;
}

/** Options to build a model. */
export interface BuildOptions {
  /** Make parameters `tf.Variable`s (for training). */
  trainable?: boolean;
}

/** A transformer with TransformerLens-style hook points. Call {@link dispose} to free its weights. */
export class HookedTransformer {
  /** Model hyper-parameters, architecture included. */
  readonly cfg: ModelConfig;
  /** Parameters keyed by canonical name (`embed.W_E`, `blocks.0.attn.W_Q`, ...; see models/canonical.ts). */
  readonly params: Map<string, tf.Tensor>;
  private readonly trainable: boolean;
  /** Forward layout built once (inference only; training rebuilds it per forward so gradients reach params). */
  private readonly fw?: ForwardTensors;
  private readonly owned: tf.Tensor[] = [];
  private readonly rotary?: RotaryTables;
  private hashCache?: string;
  /** Weights on disk, uploaded block by block (streamed models only). */
  private readonly streamed?: StreamedWeights;

  private constructor(cfg: ModelConfig, params: Map<string, tf.Tensor>, trainable: boolean, stream?: { source: BlockSource } & StreamOptions) {
    this.cfg = cfg;
    this.params = params;
    this.trainable = trainable;
    if (cfg.positional === 'rotary') {
      this.rotary = rotaryTables(cfg.nCtx, cfg.rotaryDim, cfg.ropeTheta);
      this.owned.push(this.rotary.cos, this.rotary.sin);
    }
    if (stream) {
      this.streamed = new StreamedWeights(cfg, stream.source, stream.chunkFloats, stream.keepBlocks);
    } else if (!trainable) {
      let fw: ForwardTensors | undefined;
      // The tidy frees the intermediate transposes and keeps what it returns.
      const created = tf.tidy(() => {
        const r = buildForwardTensors(cfg, params);
        fw = r.tensors;
        return r.created;
      });
      this.owned.push(...created);
      this.fw = fw;
    }
  }

  /**
   * Build a model from an HF-native state dict (names as the architecture's converter lists them,
   * see src/models/architectures/). Validates every tensor first, so nothing is
   * half-built: a missing tensor or wrong shape throws before any tensor is created.
   */
  static fromStateDict(cfg: ConfigInput, sd: StateDict, opts: BuildOptions = {}): HookedTransformer {
    const c = resolveConfig(cfg);
    checkConfig(c);
    return HookedTransformer.fromCanonical(c, hfToCanonical(c, sd), opts);
  }

  /** Build a model from canonical split weights (models/canonical.ts), validated first. */
  static fromCanonical(cfg: ConfigInput, w: CanonicalWeights, opts: BuildOptions = {}): HookedTransformer {
    const c = resolveConfig(cfg);
    checkConfig(c);
    validateCanonical(w, c);
    const params = new Map<string, tf.Tensor>();
    for (const [name, shape] of canonicalShapes(c)) {
      const a = w.get(name)!;
      const t = tf.tensor(a.data, shape, 'float32');
      // Unnamed variable: tfjs variable names are process-global, so naming them after the
      // parameter would forbid two trainable models at once.
      params.set(name, opts.trainable ? tf.variable(t, true) : t);
      if (opts.trainable) t.dispose();
    }
    return new HookedTransformer(c, params, !!opts.trainable);
  }

  /**
   * A streamed model: its weights stay in `source` (a checkpoint on disk) and each block is
   * uploaded just before it runs and freed right after, so the heap holds one block, not the model.
   * Forward passes, caches and gradients ({@link runWithCacheAndGrads}, by a block-wise backward)
   * give the same values as the whole model. The model owns `source` and closes it on dispose.
   */
  static fromBlockSource(source: BlockSource, opts: StreamOptions = {}): HookedTransformer {
    const c = resolveConfig(source.config);
    checkConfig(c);
    return new HookedTransformer(c, new Map(), false, { source, ...opts });
  }

  /** `streamed` when weights are uploaded block by block from disk, `resident` when all sit on the heap. */
  get execution(): 'resident' | 'streamed' {
    return this.streamed ? 'streamed' : 'resident';
  }

  /** Where a streamed model spent its time so far (reading, uploading); undefined for resident models. */
  streamStats(): StreamStats | undefined {
    return this.streamed ? { ...this.streamed.stats } : undefined;
  }

  private engine(): StreamedEngine {
    return { cfg: this.cfg, weights: this.streamed!, rotary: this.rotary };
  }

  /** Copy the weights out as canonical split weights. */
  canonicalWeights(): CanonicalWeights {
    if (this.streamed) throw new Error('canonicalWeights: a streamed model keeps its weights on disk (load it with --no-stream-weights to copy them out)');
    const w: CanonicalWeights = new Map();
    for (const [name, t] of this.params) w.set(name, { shape: t.shape.slice(), data: t.dataSync() as Float32Array });
    return w;
  }

  /** Copy the weights out as an HF-native state dict (the architecture's checkpoint layout). */
  toStateDict(): StateDict {
    return canonicalToHF(this.cfg, this.canonicalWeights());
  }

  /**
   * sha256 (hex) of every weight (canonical names and float32 bytes, in canonical order) and the
   * config; computed once and cached (weights of an inference model never change). Resume keys use it.
   */
  weightHash(): string {
    if (this.hashCache && !this.trainable) return this.hashCache;
    if (this.streamed) return (this.hashCache = this.streamed.source.hash());
    const h = createHash('sha256');
    h.update(JSON.stringify(this.cfg));
    for (const [name, t] of this.params) {
      h.update(name);
      const d = t.dataSync() as Float32Array;
      h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
    this.hashCache = h.digest('hex');
    return this.hashCache;
  }

  /**
   * The attention pattern of `layer` from q and k, as the forward computes it: rotary (k at
   * positions 0.., q at the last positions), scaling (1/√d_head or query_pre_attn_scalar),
   * soft-cap, causal and sliding-window mask, GQA repeat of kv heads, softmax. No rules.
   * @param q [batch, q_pos, head, d_head] (hook_q, before rotary)
   * @param k [batch, k_pos, kv_head, d_head] (hook_k, before rotary)
   * @returns [batch, head, q_pos, k_pos] (caller disposes)
   */
  attentionPattern(layer: number, q: tf.Tensor, k: tf.Tensor): tf.Tensor4D {
    const c = this.cfg;
    if (layer < 0 || layer >= c.nLayers) throw new Error(`attentionPattern: layer ${layer} out of range [0, ${c.nLayers})`);
    if (q.rank !== 4 || q.shape[2] !== c.nHeads || q.shape[3] !== c.dHead) throw new Error(`attentionPattern: q must be [batch, pos, ${c.nHeads}, ${c.dHead}], got [${q.shape.join(', ')}]`);
    if (k.rank !== 4 || k.shape[2] !== c.nKvHeads || k.shape[3] !== c.dHead || k.shape[0] !== q.shape[0] || (k.shape[1] as number) < (q.shape[1] as number)) {
      throw new Error(`attentionPattern: k must be [${q.shape[0]}, ≥${q.shape[1]}, ${c.nKvHeads}, ${c.dHead}], got [${k.shape.join(', ')}]`);
    }
    return tf.tidy(() => patternFromQK(c, layer, q, k, this.rotary) as tf.Tensor4D);
  }

  /**
   * Hook names whose values make `prefixKV[layer]` for a suffix-only forward: the keys after
   * rotary (`attn.hook_rot_k`, or `attn.hook_k` with learned positions) and `attn.hook_v`.
   */
  kvCacheHooks(layer: number): { k: string; v: string } {
    const p = `blocks.${layer}.attn.`;
    return { k: p + (this.cfg.positional === 'rotary' ? 'hook_rot_k' : 'hook_k'), v: p + 'hook_v' };
  }

  /** Which node reads which, for edge circuits (parallel blocks, GQA); see models/topology.ts. */
  topology(): GraphTopology {
    return graphTopology(this.cfg);
  }

  /** All hook-point names, in forward order. */
  hookNames(): string[] {
    return allHookNames(this.cfg);
  }

  /** Validate token ids and make an int32 tensor [batch, pos] (caller disposes if created). */
  private tokenTensor(tokens: TokenInput): tf.Tensor2D {
    if (tokens instanceof tf.Tensor) {
      if (tokens.rank !== 2) throw new Error(`tokens must be [batch, pos], got shape [${tokens.shape.join(', ')}]`);
      const [tb, tp] = tokens.shape;
      if (tb === 0 || tp === 0) throw new Error(`tokens: shape [${tb}, ${tp}] holds no tokens`);
      // Without this check a too-long input silently reads past the position embeddings.
      if (tp > this.cfg.nCtx) throw new Error(`tokens: ${tp} tokens exceed the model's context of ${this.cfg.nCtx}`);
      const ids = tokens.dataSync(); // token tensors are small; a one-hot embedding would silently zero bad ids
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        if (!Number.isInteger(id) || id < 0 || id >= this.cfg.dVocab) {
          throw new Error(`tokens: id ${id} at [${Math.floor(i / tp)}][${i % tp}] is outside the vocabulary [0, ${this.cfg.dVocab})`);
        }
      }
      return tokens.dtype === 'int32' ? tokens : (tf.cast(tokens, 'int32') as tf.Tensor2D);
    }
    if (!Array.isArray(tokens) || tokens.length === 0 || !Array.isArray(tokens[0])) {
      throw new Error('tokens must be a non-empty array of token-id arrays [batch][pos]');
    }
    const pos = tokens[0].length;
    if (pos === 0) throw new Error('tokens: prompts must hold at least one token');
    if (pos > this.cfg.nCtx) throw new Error(`tokens: ${pos} tokens exceed the model's context of ${this.cfg.nCtx}`);
    const flat = new Int32Array(tokens.length * pos);
    tokens.forEach((row, b) => {
      if (row.length !== pos) {
        throw new Error(`tokens: prompt ${b} has ${row.length} tokens but prompt 0 has ${pos}; prompts of a batch must have equal length`);
      }
      row.forEach((id, i) => {
        if (!Number.isInteger(id) || id < 0 || id >= this.cfg.dVocab) {
          throw new Error(`tokens: id ${id} at [${b}][${i}] is outside the vocabulary [0, ${this.cfg.dVocab})`);
        }
        flat[b * pos + i] = id;
      });
    });
    return tf.tensor2d(flat, [tokens.length, pos], 'int32');
  }

  /** Shape [batch, pos] of an input, for estimates and hook shapes. */
  private inputShape(tokens: TokenInput | undefined, resid: tf.Tensor | undefined): [number, number] {
    if (resid) return [resid.shape[0] as number, resid.shape[1] as number];
    if (tokens instanceof tf.Tensor) {
      if (tokens.rank !== 2) throw new Error(`tokens must be [batch, pos], got shape [${tokens.shape.join(', ')}]`);
      return [tokens.shape[0], tokens.shape[1]];
    }
    if (!tokens || tokens.length === 0 || !Array.isArray(tokens[0])) throw new Error('tokens must be a non-empty array of token-id arrays [batch][pos]');
    return [tokens.length, tokens[0].length];
  }

  /** The forward body (no tidy): logits [batch, pos, vocab]. */
  private forwardRaw(tokens: TokenInput | undefined, opts: ForwardOptions): tf.Tensor3D {
    const hooks = compileHooks(opts.hooks);
    if (opts.hooks) {
      for (const h of opts.hooks) {
        const parsed = parseHookName(h.name, this.cfg);
        if (parsed.split !== !!opts.splitQkvInput && (parsed.split || /^ln1\.hook_(scale|normalized)$/.test(parsed.suffix))) {
          throw new Error(parsed.split ? `hook "${h.name}" exists only with the forward option splitQkvInput: true` : `hook "${h.name}" does not exist with splitQkvInput (use ln1.hook_scale_q|k|v)`);
        }
      }
    }
    if (this.streamed) return this.streamedForwardRaw(tokens, opts);
    const w = this.fw ?? buildForwardTensors(this.cfg, this.params).tensors;
    let resid: tf.Tensor;
    const start = opts.startAtLayer ?? 0;
    if (start > 0 || opts.resid) {
      if (!opts.resid) throw new Error(`startAtLayer=${start} needs "resid": the cached blocks.${start}.hook_resid_pre [batch, pos, d_model]`);
      if (start < 0 || start >= this.cfg.nLayers) throw new Error(`startAtLayer=${start} is out of range [0, ${this.cfg.nLayers})`);
      const r = opts.resid;
      if (r.rank !== 3 || r.shape[2] !== this.cfg.dModel) {
        throw new Error(`resid must be [batch, pos, ${this.cfg.dModel}], got [${r.shape.join(', ')}]`);
      }
      resid = r;
    } else {
      if (tokens === undefined) throw new Error('forward needs tokens (or resid with startAtLayer)');
      const t = this.tokenTensor(tokens);
      resid = embed(this.cfg, w, t, hooks ? hooks.run : (_n, x) => x, !!opts.oneHotEmbed);
    }
    if (opts.prefixKV && !opts.resid) throw new Error('prefixKV needs resid (the suffix of blocks.{l}.hook_resid_pre) and startAtLayer');
    return runBlocks(this.cfg, w, resid, {
      hooks,
      rules: opts.rules,
      rotary: this.rotary,
      startAtLayer: start,
      lastPositionOnly: opts.lastPositionOnly,
      logitIds: opts.logitIds,
      prefixKV: opts.prefixKV,
      splitQkvInput: opts.splitQkvInput,
    }) as tf.Tensor3D;
  }

  /** Where a forward starts: checked tokens, or a checked residual at `startAtLayer`. */
  private startOf(tokens: TokenInput | undefined, opts: ForwardOptions): { tokens?: tf.Tensor2D; resid?: tf.Tensor; start: number } {
    const start = opts.startAtLayer ?? 0;
    if (start > 0 || opts.resid) {
      if (!opts.resid) throw new Error(`startAtLayer=${start} needs "resid": the cached blocks.${start}.hook_resid_pre [batch, pos, d_model]`);
      if (start < 0 || start >= this.cfg.nLayers) throw new Error(`startAtLayer=${start} is out of range [0, ${this.cfg.nLayers})`);
      const r = opts.resid;
      if (r.rank !== 3 || r.shape[2] !== this.cfg.dModel) throw new Error(`resid must be [batch, pos, ${this.cfg.dModel}], got [${r.shape.join(', ')}]`);
      return { resid: r, start };
    }
    if (opts.prefixKV) throw new Error('prefixKV needs resid (the suffix of blocks.{l}.hook_resid_pre) and startAtLayer');
    if (tokens === undefined) throw new Error('forward needs tokens (or resid with startAtLayer)');
    return { tokens: this.tokenTensor(tokens), start: 0 };
  }

  /** The streamed forward body (no tidy). */
  private streamedForwardRaw(tokens: TokenInput | undefined, opts: ForwardOptions & Pick<StreamedOptions, 'tidyBlocks'>): tf.Tensor3D {
    if (opts.oneHotEmbed) throw new Error('oneHotEmbed (training) needs a whole-model (resident) model');
    // Without hooks nothing can hold a block's activations for later: free them block by block.
    // (Never on a tape: the backward needs every block's activations.)
    return streamedForward(this.engine(), this.startOf(tokens, opts), { ...opts, tidyBlocks: !onTape() && (opts.tidyBlocks ?? !opts.hooks?.length) });
  }

  /**
   * Forward pass. Returns logits [batch, pos, vocab] (caller disposes).
   * With `startAtLayer` and `resid`, resumes from a cached residual and ignores `tokens`.
   */
  forward(tokens: TokenInput | undefined, opts: ForwardOptions = {}): tf.Tensor3D {
    const [b, p] = this.inputShape(tokens, opts.resid);
    guardMemory(this.cfg, { batch: b, pos: p, lastPositionOnly: opts.lastPositionOnly, streamed: !!this.streamed, splitQkv: !!opts.splitQkvInput }, 'this forward pass');
    if (this.trainable) return this.forwardRaw(tokens, opts); // training code manages its own scope
    return tf.tidy(() => this.forwardRaw(tokens, opts));
  }

  /** Forward with hooks that read or replace activations; the hooks are gone after the call. */
  runWithHooks(tokens: TokenInput | undefined, hooks: Hook[], opts: Omit<ForwardOptions, 'hooks'> = {}): tf.Tensor3D {
    return this.forward(tokens, { ...opts, hooks });
  }

  private resolveNames(names: CacheOptions['names']): string[] {
    const all = this.hookNames();
    if (names === undefined) return all.filter((n) => !n.endsWith('hook_result'));
    if (typeof names === 'function') return all.filter(names);
    for (const n of names) parseHookName(n, this.cfg);
    return names;
  }

  /**
   * Forward and cache activations at the named hooks (all but hook_result by default).
   * Returns logits [batch, pos, vocab] and the cache; the caller owns both.
   */
  runWithCache(tokens: TokenInput | undefined, opts: CacheOptions = {}): { logits: tf.Tensor3D; cache: ActivationCache } {
    const names = this.resolveNames(opts.names);
    const [b, p] = this.inputShape(tokens, opts.resid);
    // The cache holds tensors the forward's scope keeps alive anyway: no extra memory.
    guardMemory(this.cfg, { batch: b, pos: p, lastPositionOnly: opts.lastPositionOnly, streamed: !!this.streamed }, 'runWithCache');
    if (this.streamed && !opts.hooks?.length && !opts.postHooks?.length) return this.streamedCache(tokens, names, opts);
    return tf.tidy(() => {
      const cache: ActivationCache = {};
      const hooks: Hook[] = [
        ...(opts.hooks ?? []),
        ...names.map((name) => ({ name, fn: (x: tf.Tensor) => void (cache[name] = x) })),
        ...(opts.postHooks ?? []),
      ];
      const logits = this.forwardRaw(tokens, { ...opts, hooks });
      return { logits, cache };
    });
  }

  /**
   * Forward, a scalar metric of the logits, and its gradient w.r.t. the activations at the
   * named hooks. With `rules`, gradients are the LRP-modified ones (forward unchanged).
   * The caller owns every returned tensor.
   */
  runWithCacheAndGrads(tokens: TokenInput | undefined, metric: MetricFn, opts: CacheOptions = {}): CacheAndGrads {
    const names = this.resolveNames(opts.names);
    if (names.length === 0) throw new Error('runWithCacheAndGrads: no hook names to take gradients at (options.names is empty)');
    const [b, p] = this.inputShape(tokens, opts.resid);
    // Each probed hook costs about 5 copies of its activation (probe, cache, gradient, tape), measured
    // in units of one residual stream [b, p, d_model].
    const probeFloats = names.reduce((n, name) => n + hookShape(name, this.cfg, b, p).reduce((x, y) => x * y, 1), 0);
    const work: WorkloadShape = { batch: b, pos: p, backward: true, cachedResiduals: (5 * probeFloats) / (b * p * this.cfg.dModel), lastPositionOnly: opts.lastPositionOnly, splitQkv: !!opts.splitQkvInput };
    guardMemory(this.cfg, { ...work, streamed: !!this.streamed }, 'a forward and backward pass');
    if (this.streamed && !this.oneTape(work)) return this.streamedGrads(tokens, metric, names, opts);
    const cache: ActivationCache = {};
    let logits: tf.Tensor3D | undefined;
    try {
      const out = tf.tidy(() => {
        // With lastPositionOnly the ln_final hooks see one position.
        const posAt = (n: string) => (opts.lastPositionOnly && n.startsWith('ln_final.') ? 1 : p);
        const deltas = names.map((n) => tf.zeros(hookShape(n, this.cfg, b, posAt(n))));
        let failure: { err: unknown } | undefined;
        const f = (...ds: tf.Tensor[]): tf.Scalar => {
          try {
            return body(ds);
          } catch (err) {
            // Rethrown after the backward pass: tfjs frees the tensors its tape saved only when a
            // backward completes, so a throw inside the tape (metric, hook) would leak all of them.
            failure = { err };
            return tf.mul(tf.addN(ds.map((d) => tf.sum(d))), 0) as tf.Scalar;
          }
        };
        const body = (ds: tf.Tensor[]): tf.Scalar => {
          const hooks: Hook[] = [
            ...(opts.hooks ?? []),
            ...names.map((name, i) => ({
              name,
              fn: (x: tf.Tensor) => {
                cache[name] = tf.keep(tf.clone(x));
                return tf.add(x, ds[i]); // zero probe: its gradient is d metric / d activation
              },
            })),
            ...(opts.postHooks ?? []),
          ];
          const lg = this.forwardRaw(tokens, { ...opts, hooks });
          logits = tf.keep(lg);
          const v = metric(lg);
          if (v.rank !== 0) throw new Error(`metric must return a scalar, got shape [${v.shape.join(', ')}]`);
          // Tie every probe to the output so hooks cut off from the metric get zero gradients
          // (tfjs throws for an input with no path to the output).
          return ds.length ? (tf.add(v, tf.mul(tf.addN(ds.map((d) => tf.sum(d))), 0)) as tf.Scalar) : v;
        };
        const { value, grads } = tf.valueAndGrads(f)(deltas);
        if (failure) throw failure.err;
        const g: ActivationCache = {};
        names.forEach((n, i) => (g[n] = grads[i]));
        return { value: value as tf.Scalar, grads: g };
      });
      return { logits: logits!, value: out.value, cache, grads: out.grads };
    } catch (err) {
      for (const t of Object.values(cache)) t.dispose();
      logits?.dispose();
      throw err;
    }
  }

  /**
   * runWithCache on a streamed model without user hooks: each block's activations are freed when
   * the block is done, except the cached (kept) ones.
   */
  private streamedCache(tokens: TokenInput | undefined, names: string[], opts: CacheOptions): { logits: tf.Tensor3D; cache: ActivationCache } {
    const cache: ActivationCache = {};
    try {
      const logits = tf.tidy(() => this.streamedForwardRaw(tokens, { ...opts, hooks: cachingHooks(names, cache), tidyBlocks: true }));
      return { logits, cache };
    } catch (err) {
      for (const t of Object.values(cache)) t.dispose();
      throw err;
    }
  }

  /**
   * Whether a streamed model takes gradients on one tape over all blocks, as a whole model does,
   * instead of the block-wise backward (which recomputes every block): when every block stays
   * uploaded and the whole-model estimate of the pass fits the heap.
   */
  private oneTape(w: WorkloadShape): boolean {
    if (!this.streamed?.keepsEveryBlock) return false;
    return tf.getBackend() !== 'wasm' || estimateBytes(this.cfg, w) <= heapLimitBytes();
  }

  /** runWithCacheAndGrads on a streamed model: the block-wise backward. */
  private streamedGrads(tokens: TokenInput | undefined, metric: MetricFn, names: string[], opts: CacheOptions): CacheAndGrads {
    if (opts.oneHotEmbed) throw new Error('oneHotEmbed (training) needs a whole-model (resident) model');
    const input = this.startOf(tokens, opts);
    try {
      return streamedCacheAndGrads(this.engine(), input, metric, names, opts);
    } finally {
      if (input.tokens && input.tokens !== tokens) input.tokens.dispose();
    }
  }

  /** Free the model's weights. */
  dispose(): void {
    for (const t of this.owned) t.dispose();
    for (const t of this.params.values()) t.dispose();
    if (this.streamed) {
      this.streamed.dispose();
      this.streamed.source.close();
    }
  }
}
