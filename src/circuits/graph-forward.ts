/**
 * A forward pass of the model at graph granularity: every node input (head q/k/v input, MLP
 * input, logits input) is its own residual stream, so single edges can be patched and each
 * input gets its own gradient.
 *
 * How: the HookedTransformer runs as usual, with hooks that
 * - record each node's output: `input` = blocks.0.hook_resid_pre (embed + pos), head h of layer l
 *   = hook_result[:, :, h] (z_h @ W_O[h], without b_O), MLP l = hook_mlp_out;
 * - rebuild each node input as `live residual + Σ_u coef(u→t) · (src(u) − live(u))` (+ a zero probe
 *   whose gradient is ∂m/∂input). The live residual at a target is the biases plus the sum of the
 *   live outputs of its upstream nodes, which is exactly the model's own residual stream there;
 * - per-head q/k/v inputs replace the model's split inputs (`attn.hook_q_input` [b, p, head, d],
 *   `hook_k_input` / `hook_v_input` [b, p, kv_head, d], forward option `splitQkvInput`): the model
 *   applies each head's norm and projection. MLP inputs replace `hook_mlp_in` (the residual stream
 *   itself is untouched); the logits input replaces the last hook_resid_post.
 * - with grouped-query attention the k and v targets are per kv head (`grouped`) or per query head
 *   (`per-head`, see `GqaConvention` in graph.ts); per-head runs g = nHeads / nKvHeads copies of the batch
 *   ({@link kvCopies}) so that each query head's keys and values come from its own input.
 *
 * - with post-norms (Gemma-2) node outputs are taken before the norms (MLP l = ln2_post's input,
 *   hook_normalized · hook_scale) and a target's patch term is, per upstream layer and norm,
 *   PN(S + Δ_t) − PN(S) with S the live pre-norm sum (post-norm.ts): each target normalises the
 *   sums it sees (MIB's convention). Other models keep the additive term.
 *
 * Attention b_O is in every residual and never patched (it is no node's output), as in EAP-IG.
 * Several patch settings ("groups") run in one forward, stacked along the batch axis: [G·B, ...].
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { Hook } from '../hooks/hook-point.ts';
import type { RuleSet } from '../rules/rules.ts';
import { compileHooks, type CompiledHooks } from '../hooks/hook-point.ts';
import { headNode, layerTargets, mlpNode, type CircuitGraph, type GraphTarget } from './graph.ts';
import { checkPostNorms, postNormCorrection, postNormGain, postNormInputHooks, postNormScaleHook, scaleHookOf, splitGraphHooks, type PostNormKind } from './post-norm.ts';

/** Patch edges: edge (u → t) of group g carries `coef[g·E + e] · (src(u) − live(u))` on top of the live value. */
export interface EdgePatch {
  /** Source outputs of the non-logits nodes, in node order: [nNodes − 1, B, pos, d_model] (shared by all groups). */
  src: tf.Tensor;
  /** Coefficients [G · nEdges], group-major; 1 = the edge carries the source value, 0 = the live one. */
  coef: Float32Array;
}

/** Zero tensors added to each node input; their gradients are ∂m/∂input. */
export interface GraphProbes {
  /** Per layer, [G·B, pos, head, d_model] (k and v: one per k / v target, kv_head or, per-head GQA, head). */
  q: tf.Tensor[];
  k: tf.Tensor[];
  v: tf.Tensor[];
  /** Per layer, [G·B, pos, d_model]. */
  mlp: tf.Tensor[];
  /** [G·B, pos, d_model]. */
  logits: tf.Tensor;
}

/** Options of {@link graphForward}. */
export interface GraphForwardOptions {
  /** Patch settings stacked along the batch axis (default 1). */
  groups?: number;
  patch?: EdgePatch;
  /** LRP rules for the backward pass. */
  rules?: RuleSet;
  /** Extra model hooks (run before the graph hooks at the same point), e.g. freezing non-linearities. */
  hooks?: Hook[];
  /**
   * Hooks on the model's per-head norm scales `blocks.{l}.ln1.hook_scale_q|k|v`, [G·B, pos, head
   * (kv_head for k, v), 1], used when the forward splits q/k/v inputs (with a patch or probes);
   * with post-norms also on each reading target's post-norm scale,
   * `blocks.{l}.ln1_post|ln2_post.hook_scale_targets` (post-norm.ts, {@link postNormScaleHook}).
   */
  graphHooks?: Hook[];
  /** Replace the `input` node's output (embed + pos), [B, pos, d_model] or [G·B, pos, d_model]. */
  inputOverride?: tf.Tensor;
  probes?: GraphProbes;
  /** Return the live node outputs. */
  collectOutputs?: boolean;
  /** Unembed only the last position (default true). */
  lastPositionOnly?: boolean;
}

/** Result of {@link graphForward}. */
export interface GraphForwardResult {
  /** Logits [G·B, 1 or pos, vocab]. */
  logits: tf.Tensor3D;
  /** Live outputs of the non-logits nodes, stacked [nNodes − 1, G·B, pos, d_model] (when collected; not tidied). */
  outputs?: tf.Tensor4D;
}

/** Coefficients of one group of targets as a [G, targets, nUp] tensor, or undefined when all zero. */
function coefTensor(coef: Float32Array | undefined, G: number, E: number, targets: GraphTarget[], nUp: number): tf.Tensor3D | undefined {
  if (!coef) return undefined;
  const data = new Float32Array(G * targets.length * nUp);
  let any = false;
  for (let g = 0; g < G; g++) {
    targets.forEach((t, i) => {
      for (let u = 0; u < nUp; u++) {
        const c = coef[g * E + t.edgeOffset + u];
        if (c !== 0) any = true;
        data[(g * targets.length + i) * nUp + u] = c;
      }
    });
  }
  return any ? tf.tensor3d(data, [G, targets.length, nUp]) : undefined;
}

/**
 * Patch terms Σ_u coef[g, t, u] · (src(start + u) − live(start + u)) for `T` targets, [G·B, pos, T, d].
 * live: the live outputs, each [G·B, pos, d] (n of them from `start` are read); src [≥start + n, B, pos, d].
 */
function patchTerm(coef: tf.Tensor3D, live: tf.Tensor[], src: tf.Tensor, G: number, start = 0): tf.Tensor {
  const n = coef.shape[2];
  const T = coef.shape[1];
  const [, B, P, D] = src.shape as number[];
  const X = B * P * D;
  const liveS = tf.stack(live.slice(start, start + n).map((t) => tf.reshape(t, [G, X])), 1); // [G, n, X]
  const srcS = tf.reshape(tf.slice(src, [start, 0, 0, 0], [n, B, P, D]), [1, n, X]); // [1, n, X]
  const y = tf.reshape(tf.matMul(coef, tf.sub(srcS, liveS)), [G, T, B, P, D]); // [G, T, B, P, D]
  if (T === 1) return tf.reshape(y, [G * B, P, 1, D]);
  return tf.reshape(tf.transpose(y, [0, 2, 3, 1, 4]), [G * B, P, T, D]); // [G·B, P, T, D]
}

/**
 * Throw unless `graph` is this model's graph and its node outputs reach the residual stream either
 * additively or through post-norms that this code handles (post-norm.ts: RMS norms, resident weights).
 */
export function checkGraph(model: HookedTransformer, graph: CircuitGraph): void {
  const cfg = model.cfg;
  if (graph.nLayers !== cfg.nLayers || graph.nHeads !== cfg.nHeads || graph.nKvHeads !== cfg.nKvHeads) {
    throw new Error(`graph is ${graph.nLayers} layers × ${graph.nHeads} heads (${graph.nKvHeads} kv) but the model is ${cfg.nLayers} × ${cfg.nHeads} (${cfg.nKvHeads} kv)`);
  }
  const topo = model.topology();
  if (!topo.headsAdditive || !topo.mlpAdditive) {
    if (!cfg.postNorms) throw new Error(`edge circuits need node outputs that add into the residual stream, or post-norms; ${cfg.modelType} has neither`);
    checkPostNorms(model);
  }
}

/**
 * Copies of the batch a forward runs for the `per-head` GQA convention: g = nHeads / nKvHeads
 * (1 for `grouped` or multi-head graphs). Copy r carries, at each kv head j, the k / v input of
 * query head j·g + r; after the attention, head h keeps the z of copy h mod g and every copy
 * continues with those merged z (so all copies compute the same residual stream). The model
 * projects only kv-head inputs, so g copies are how each query head gets keys and values of its own.
 */
export function kvCopies(graph: CircuitGraph): number {
  return graph.gqa === 'per-head' ? graph.nHeads / graph.nKvHeads : 1;
}

/** Per-query-head inputs [GB, p, H, d] → per-copy kv-head inputs [g·GB, p, KV, d] (copy r, kv j ← head j·g + r). */
export function headsToCopies(x: tf.Tensor, g: number): tf.Tensor {
  if (g === 1) return x;
  const [GB, p, H, d] = x.shape as number[];
  return tf.reshape(tf.transpose(tf.reshape(x, [GB * p, H / g, g, d]), [2, 0, 1, 3]), [g * GB, p, H / g, d]);
}

/** Inverse of {@link headsToCopies}: [g·GB, p, KV, d] → [GB, p, KV·g, d]. */
export function copiesToHeads(x: tf.Tensor, g: number): tf.Tensor {
  if (g === 1) return x;
  const [n, p, KV, d] = x.shape as number[];
  return tf.reshape(tf.transpose(tf.reshape(x, [g, (n / g) * p, KV, d]), [1, 2, 0, 3]), [n / g, p, KV * g, d]);
}

/** Sum over the g copies of a [g·GB, ...] tensor → [GB, ...] (gradients of inputs shared by every copy). */
export function sumCopies(x: tf.Tensor, g: number): tf.Tensor {
  if (g === 1) return x;
  const [n, ...rest] = x.shape as number[];
  return tf.sum(tf.reshape(x, [g, n / g, ...rest]), 0);
}

/** The first copy of a [g·GB, ...] tensor. */
export function firstCopy(x: tf.Tensor, g: number, axis = 0): tf.Tensor {
  if (g === 1) return x;
  const size = x.shape.map((s, i) => (i === axis ? s / g : -1));
  return tf.slice(x, x.shape.map(() => 0), size);
}

/** Hooks on attn.hook_z [g·GB, p, H, dh] of every layer: head h takes copy (h mod g)'s z, then all copies get the merged z. */
export function mergeCopiesHooks(L: number, g: number): Hook[] {
  if (g === 1) return [];
  return Array.from({ length: L }, (_, l) => ({
    name: `blocks.${l}.attn.hook_z`,
    fn: (z: tf.Tensor) => {
      const [n, p, H, dh] = z.shape as number[];
      const GB = n / g;
      const eye = tf.reshape(tf.eye(g), [g, 1, g, 1]); // [copy, 1, head within group, 1]
      const merged = tf.sum(tf.mul(tf.reshape(z, [g, GB * p * (H / g), g, dh]), eye), 0); // [GB·p·KV, g, dh]
      return tf.reshape(tf.tile(tf.reshape(merged, [1, GB * p * H * dh]), [g, 1]), [n, p, H, dh]);
    },
  }));
}

/** What the hooks of one graph forward share. */
interface ForwardState {
  graph: CircuitGraph;
  opts: GraphForwardOptions;
  /** Patch groups and kv copies: the forward's batch is copies · G · B. */
  G: number;
  copies: number;
  E: number;
  /** Node outputs in node order, each [copies·G·B, pos, d]. */
  live: tf.Tensor[];
  /** Post-norm models: gains, live pre-norm sums per layer and the graph's own scale hooks. */
  post?: PostNormState;
}

/** What the post-norm corrections of a forward need (see post-norm.ts). */
interface PostNormState {
  eps: number;
  /** γ per layer: gains[kind − 1][l], [d]. */
  gains: tf.Tensor1D[][];
  /** Live pre-norm sums: sums[kind − 1][l], [copies·G·B, pos, d] (set as the forward reaches them). */
  sums: tf.Tensor[][];
  own?: CompiledHooks;
}

/**
 * The change of `T` targets' inputs, [copies·G·B, pos, T, d], for coefficients c [copies·G, T, n]:
 * Σ_u c·(src − live) for additive models; for post-norm models the input node's term plus, per
 * upstream layer and post-norm, PN(S + Δ_t) − PN(S) (post-norm.ts).
 */
function targetTerm(st: ForwardState, c: tf.Tensor3D): tf.Tensor {
  const src = st.opts.patch!.src;
  const GG = st.copies * st.G;
  const post = st.post;
  if (!post) return patchTerm(c, st.live, src, GG);
  const [, T, n] = c.shape;
  const H = st.graph.nHeads;
  let acc = patchTerm(tf.slice(c, [0, 0, 0], [GG, T, 1]), st.live, src, GG); // the embedding adds linearly
  for (let l = 0; l < st.graph.nLayers; l++) {
    const blocks: [number, number, PostNormKind][] = [[headNode(H, l, 0), H, 1], [mlpNode(H, l), 1, 2]];
    for (const [start, cnt, kind] of blocks) {
      if (start >= n) return acc; // upstream nodes are a prefix: whole layers' heads, then the MLP
      const S = post.sums[kind - 1][l];
      const next = tf.tidy(() => {
        const delta = patchTerm(tf.slice(c, [0, 0, start], [GG, T, cnt]), st.live, src, GG, start); // [GG·B, p, T, d]
        const S1 = tf.expandDims(S, 2); // [GG·B, p, 1, d]
        const X = tf.concat([S1, tf.add(S1, delta)], 2); // slot 0: the live sum
        return tf.add(acc, postNormCorrection(X, post.gains[kind - 1][l], post.eps, scaleHookOf(post.own, postNormScaleHook(l, kind))));
      });
      acc.dispose();
      acc = next;
    }
  }
  return acc;
}

/** Coefficients [copies·G, T, n] of targets of one kind; k / v targets per query head are spread over the copies. Undefined when all zero. */
function coefFor(st: ForwardState, targets: GraphTarget[], nUp: number, perHeadKv: boolean): tf.Tensor3D | undefined {
  const c = st.opts.patch ? coefTensor(st.opts.patch.coef, st.G, st.E, targets, nUp) : undefined;
  const g = st.copies;
  if (!c || g === 1) return c;
  if (!perHeadKv) return tf.tile(c, [g, 1, 1]);
  const H = targets.length;
  return tf.reshape(tf.transpose(tf.reshape(c, [st.G, H / g, g, nUp]), [2, 0, 1, 3]), [g * st.G, H / g, nUp]);
}

/** Tile a probe shared by every copy. */
function tileCopies(x: tf.Tensor, g: number): tf.Tensor {
  return g === 1 ? x : tf.tile(x, [g, ...Array(x.rank - 1).fill(1)]);
}

/** The hooks of layer l: split q / k / v inputs (when `split`), head outputs, MLP input and output. */
function layerHooks(st: ForwardState, l: number, split: boolean): Hook[] {
  const { graph, opts, live, copies: g } = st;
  const H = graph.nHeads;
  const KT = graph.nKvTargets;
  const ts = layerTargets(graph, l);
  const nUpHead = ts[0].nUp;
  const byInput = [ts.slice(0, H), ts.slice(H, H + KT), ts.slice(H + KT, H + 2 * KT)];
  const hooks: Hook[] = st.post ? postNormHooks(st.post, l) : [];
  if (split) {
    (['q', 'k', 'v'] as const).forEach((name, which) => {
      hooks.push({
        // The model normalises and projects each head's input itself (split q/k/v inputs):
        // x is resid_pre broadcast per head, [copies·GB, p, H or KV, d].
        name: `blocks.${l}.attn.hook_${name}_input`,
        fn: (x) => {
          const c = coefFor(st, byInput[which], nUpHead, which > 0 && g > 1);
          const probe = opts.probes?.[name][l];
          if (!c && !probe) return undefined;
          let R: tf.Tensor = c ? tf.add(x, targetTerm(st, c)) : x;
          if (probe) R = tf.add(R, name === 'q' ? tileCopies(probe, g) : headsToCopies(probe, g));
          return R;
        },
      });
    });
  }
  hooks.push({
    name: `blocks.${l}.attn.hook_result`,
    fn: (x) => {
      // Per-head outputs [GB, p, d]: one transpose, then contiguous slices (Unpack is slow on wasm).
      const [gb, p, , D] = x.shape as number[];
      const xt = tf.transpose(x, [2, 0, 1, 3]); // [H, GB, p, d]
      for (let h = 0; h < H; h++) live.push(tf.reshape(tf.slice(xt, [h, 0, 0, 0], [1, gb, p, D]), [gb, p, D]));
    },
  });
  hooks.push({
    // The MLP's input (resid_mid, or resid_pre for parallel blocks); replacing it leaves the residual stream alone.
    name: `blocks.${l}.hook_mlp_in`,
    fn: (x) => {
      const m = ts[H + 2 * KT];
      const c = coefFor(st, [m], m.nUp, false);
      const probe = opts.probes?.mlp[l];
      if (!c && !probe) return undefined;
      let R = x;
      if (c) R = tf.add(R, tf.squeeze(targetTerm(st, c), [2]));
      if (probe) R = tf.add(R, tileCopies(probe, g));
      return R;
    },
  });
  hooks.push({
    name: `blocks.${l}.hook_mlp_out`,
    fn: (x) => {
      if (live.length !== mlpNode(H, l)) throw new Error(`internal: ${live.length} node outputs recorded before m${l}`);
      // With post-norms the MLP node's output is its value before ln2_post.
      live.push(st.post ? st.post.sums[1][l] : x);
    },
  });
  return hooks;
}

/**
 * Hooks recording the live pre-norm sums of layer l's post-norms as hook_normalized · hook_scale
 * (the norm's input; after any model hook at those points, e.g. a frozen scale).
 */
function postNormHooks(post: PostNormState, l: number): Hook[] {
  const hooks: Hook[] = [];
  for (const kind of [1, 2] as const) {
    const [scaleName, normName] = postNormInputHooks(l, kind);
    let scale: tf.Tensor | undefined;
    hooks.push({ name: scaleName, fn: (x) => void (scale = x) });
    hooks.push({ name: normName, fn: (x) => void (post.sums[kind - 1][l] = tf.mul(x, scale!)) });
  }
  return hooks;
}

/** Check a patch's shapes against the graph and the prompts. */
function checkPatch(graph: CircuitGraph, patch: EdgePatch, G: number, B: number, D: number): void {
  if (patch.coef.length !== G * graph.nEdges) throw new Error(`patch.coef has ${patch.coef.length} values, expected groups × edges = ${G} × ${graph.nEdges}`);
  const s = patch.src.shape;
  if (s.length !== 4 || s[0] !== graph.nodes.length - 1 || s[1] !== B || s[3] !== D) {
    throw new Error(`patch.src must be [${graph.nodes.length - 1}, ${B}, pos, ${D}], got [${s.join(', ')}]`);
  }
}

/**
 * Run the model with per-input residual streams. Not tidied: call inside `tf.tidy` (or a gradient
 * function) and keep what you return.
 */
export function graphForwardRaw(model: HookedTransformer, graph: CircuitGraph, tokens: number[][], opts: GraphForwardOptions = {}): GraphForwardResult {
  const L = model.cfg.nLayers;
  checkGraph(model, graph);
  const G = opts.groups ?? 1;
  const B = tokens.length;
  if (opts.patch) checkPatch(graph, opts.patch, G, B, model.cfg.dModel);
  // Split per-head inputs only when something changes or probes them (otherwise the model's own q/k/v).
  const gh = splitGraphHooks(opts.graphHooks);
  const split = !!(opts.patch || opts.probes || gh.model.length);
  const copies = split ? kvCopies(graph) : 1;
  const st: ForwardState = { graph, opts, G, copies, E: graph.nEdges, live: [] };
  if (model.cfg.postNorms) {
    const gains = ([1, 2] as const).map((k) => Array.from({ length: L }, (_, l) => postNormGain(model, l, k)));
    st.post = { eps: model.cfg.eps, gains, sums: [[], []], own: compileHooks(gh.own) };
  }
  const tokensG = Array.from({ length: G * copies }, () => tokens).flat();
  let collected: tf.Tensor4D | undefined;
  const hooks: Hook[] = [...(opts.hooks ?? []), ...(split ? gh.model : []), ...mergeCopiesHooks(L, copies)];
  hooks.push({
    name: 'blocks.0.hook_resid_pre',
    fn: (x) => {
      const o = opts.inputOverride;
      const e = o ? (o.shape[0] === x.shape[0] ? o : tf.tile(o, [x.shape[0] / o.shape[0], 1, 1])) : x;
      st.live.push(e);
      return e === x ? undefined : e;
    },
  });
  for (let l = 0; l < L; l++) hooks.push(...layerHooks(st, l, split));
  hooks.push({
    name: `blocks.${L - 1}.hook_resid_post`,
    fn: (x) => {
      let r = x; // the live residual stream
      const t = layerTargets(graph, L)[0];
      const c = coefFor(st, [t], t.nUp, false);
      if (c) r = tf.add(r, tf.squeeze(targetTerm(st, c), [2]));
      if (opts.probes) r = tf.add(r, tileCopies(opts.probes.logits, copies));
      // The model's forward is tidied: keep the stacked outputs past its scope (the first copy: all are equal).
      if (opts.collectOutputs) collected = tf.keep(firstCopy(tf.stack(st.live), copies, 1)) as tf.Tensor4D;
      return r === x ? undefined : r;
    },
  });
  try {
    const logits = model.forward(tokensG, { hooks, rules: opts.rules, lastPositionOnly: opts.lastPositionOnly ?? true, splitQkvInput: split });
    return { logits: firstCopy(logits, copies) as tf.Tensor3D, outputs: collected };
  } catch (err) {
    collected?.dispose();
    throw err;
  }
}

/**
 * Run the model with per-input residual streams (each target reads the sum of its source edges,
 * patched per `opts.patch`), in its own tidy scope: returns logits [G·B, 1 or pos, vocab] and, when
 * `collectOutputs` is set, the stacked live node outputs [nNodes − 1, G·B, pos, d_model]. Caller disposes.
 */
export function graphForward(model: HookedTransformer, graph: CircuitGraph, tokens: number[][], opts: GraphForwardOptions = {}): { logits: tf.Tensor3D; outputs?: tf.Tensor4D } {
  return tf.tidy(() => {
    const r = graphForwardRaw(model, graph, tokens, opts);
    return { logits: r.logits, ...(r.outputs ? { outputs: r.outputs } : {}) };
  });
}
