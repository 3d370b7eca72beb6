/**
 * HookedTransformer: a GPT-2 with TransformerLens hook points on TensorFlow.js.
 *
 * ```ts
 * const model = HookedTransformer.fromStateDict(cfg, stateDict);
 * const logits = model.forward([[15496, 995]]);                       // [batch, pos, vocab]
 * const { logits, cache } = model.runWithCache(tokens, { names: ['blocks.0.attn.hook_z'] });
 * const out = model.runWithHooks(tokens, [{ name: 'blocks.1.hook_resid_pre', fn: (x) => tf.zerosLike(x) }]);
 * const g = model.runWithCacheAndGrads(tokens, (logits) => logits.mean(), { names: [...] });
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import type { GPT2Config } from '../models/config.ts';
import { expectedShapes, validateStateDict, type StateDict } from '../models/state-dict.ts';
import type { RuleSet } from '../relp/rules.ts';
import { guardMemory } from '../backend/memory-guard.ts';
import { compileHooks, type Hook } from './hook-point.ts';
import { allHookNames, hookShape, parseHookName } from './hook-points.ts';
import type { ActivationCache } from './activation-cache.ts';
import { embed, runBlocks, type BlockWeights, type GPT2Tensors } from './gpt2-forward.ts';

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
  /** Embed with a one-hot matmul so `wte` gets gradients (training on wasm). */
  oneHotEmbed?: boolean;
  /** Return logits for the last position only, [batch, 1, vocab] (faster; ln_final hooks see [batch, 1, d_model]). */
  lastPositionOnly?: boolean;
  /**
   * With `startAtLayer` and `resid` holding only the positions after a prefix: the prefix's cached
   * keys and values per layer (`prefixKV[l] = {k, v}`, each [batch, prefix, head, d_head], from
   * `blocks.{l}.attn.hook_k/hook_v`). Hooks then see suffix-shaped activations.
   */
  prefixKV?: ({ k: tf.Tensor; v: tf.Tensor } | undefined)[];
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

/** Options to build a model. */
export interface BuildOptions {
  /** Make parameters `tf.Variable`s (for training). */
  trainable?: boolean;
}

/** A GPT-2 with TransformerLens-style hook points. Call {@link dispose} to free its weights. */
export class HookedTransformer {
  /** Model hyper-parameters. */
  readonly cfg: GPT2Config;
  /** Parameters keyed by canonical HF name (`wte.weight`, `h.0.attn.c_attn.weight`, ...). */
  readonly params: Map<string, tf.Tensor>;
  private readonly w: GPT2Tensors;
  private readonly trainable: boolean;

  private constructor(cfg: GPT2Config, params: Map<string, tf.Tensor>, trainable: boolean) {
    this.cfg = cfg;
    this.params = params;
    this.trainable = trainable;
    const g = <T extends tf.Tensor>(n: string) => params.get(n) as T;
    const blocks: BlockWeights[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = `h.${l}.`;
      blocks.push({
        ln1W: g(p + 'ln_1.weight'),
        ln1B: g(p + 'ln_1.bias'),
        attnW: g(p + 'attn.c_attn.weight'),
        attnB: g(p + 'attn.c_attn.bias'),
        projW: g(p + 'attn.c_proj.weight'),
        projB: g(p + 'attn.c_proj.bias'),
        ln2W: g(p + 'ln_2.weight'),
        ln2B: g(p + 'ln_2.bias'),
        fcW: g(p + 'mlp.c_fc.weight'),
        fcB: g(p + 'mlp.c_fc.bias'),
        fcProjW: g(p + 'mlp.c_proj.weight'),
        fcProjB: g(p + 'mlp.c_proj.bias'),
      });
    }
    this.w = { wte: g('wte.weight'), wpe: g('wpe.weight'), blocks, lnfW: g('ln_f.weight'), lnfB: g('ln_f.bias') };
    // Inference keeps a transposed copy of wte so the unembedding is a plain matmul.
    if (!trainable) this.w.wteT = tf.keep(tf.transpose(this.w.wte) as tf.Tensor2D);
  }

  /**
   * Build a model from framework-free weights. Validates every tensor first, so nothing is
   * half-built: a missing tensor or wrong shape throws before any tensor is created.
   */
  static fromStateDict(cfg: GPT2Config, sd: StateDict, opts: BuildOptions = {}): HookedTransformer {
    validateStateDict(sd, cfg);
    const params = new Map<string, tf.Tensor>();
    for (const [name, shape] of expectedShapes(cfg)) {
      const a = sd.get(name)!;
      const t = tf.tensor(a.data, shape, 'float32');
      // Unnamed variable: tfjs variable names are process-global, so naming them after the
      // parameter would forbid two trainable models at once.
      params.set(name, opts.trainable ? tf.variable(t, true) : t);
      if (opts.trainable) t.dispose();
    }
    return new HookedTransformer(cfg, params, !!opts.trainable);
  }

  /** Copy the weights out as a framework-free state dict. */
  toStateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [name, t] of this.params) sd.set(name, { shape: t.shape.slice(), data: t.dataSync() as Float32Array });
    return sd;
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
    if (opts.hooks) for (const h of opts.hooks) parseHookName(h.name, this.cfg);
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
      resid = embed(this.w, t, hooks ? hooks.run : (_n, x) => x, !!opts.oneHotEmbed);
    }
    if (opts.prefixKV && !opts.resid) throw new Error('prefixKV needs resid (the suffix of blocks.{l}.hook_resid_pre) and startAtLayer');
    return runBlocks(this.w, this.cfg, resid, { hooks, rules: opts.rules, startAtLayer: start, lastPositionOnly: opts.lastPositionOnly, prefixKV: opts.prefixKV }) as tf.Tensor3D;
  }

  /**
   * Forward pass. Returns logits [batch, pos, vocab] (caller disposes).
   * With `startAtLayer` and `resid`, resumes from a cached residual and ignores `tokens`.
   */
  forward(tokens: TokenInput | undefined, opts: ForwardOptions = {}): tf.Tensor3D {
    const [b, p] = this.inputShape(tokens, opts.resid);
    guardMemory(this.cfg, { batch: b, pos: p, lastPositionOnly: opts.lastPositionOnly }, 'this forward pass');
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
    guardMemory(this.cfg, { batch: b, pos: p, lastPositionOnly: opts.lastPositionOnly }, 'runWithCache');
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
    guardMemory(this.cfg, { batch: b, pos: p, backward: true, cachedResiduals: (5 * probeFloats) / (b * p * this.cfg.dModel), lastPositionOnly: opts.lastPositionOnly }, 'a forward and backward pass');
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

  /** Free the model's weights. */
  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.w.wteT?.dispose();
  }
}
