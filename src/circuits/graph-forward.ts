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
 * - per-head q/k/v inputs go through LN1 and that head's slice of W_Q/W_K/W_V here (hook_q/k/v are
 *   replaced); MLP inputs replace hook_resid_mid (then hook_resid_post is restored to the live sum,
 *   so later layers see the live residual); the logits input replaces the last hook_resid_post.
 *
 * Attention b_O is in every residual and never patched (it is no node's output), as in EAP-IG.
 * Several patch settings ("groups") run in one forward, stacked along the batch axis: [G·B, ...].
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import { compileHooks, type Hook } from '../hooks/hook-point.ts';
import { stopGradient } from '../relp/ops.ts';
import type { RuleSet } from '../relp/rules.ts';
import { layerTargets, mlpNode, type CircuitGraph, type GraphTarget } from './graph.ts';

/** Patch edges: edge (u → t) of group g carries `coef[g·E + e] · (src(u) − live(u))` on top of the live value. */
export interface EdgePatch {
  /** Source outputs of the non-logits nodes, in node order: [nNodes − 1, B, pos, d_model] (shared by all groups). */
  src: tf.Tensor;
  /** Coefficients [G · nEdges], group-major; 1 = the edge carries the source value, 0 = the live one. */
  coef: Float32Array;
}

/** Zero tensors added to each node input; their gradients are ∂m/∂input. */
export interface GraphProbes {
  /** Per layer, [G·B, pos, head, d_model]. */
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
  /** LRP rules for the backward pass (also applied to the per-head LayerNorms here). */
  rules?: RuleSet;
  /** Extra model hooks (run before the graph hooks at the same point), e.g. freezing non-linearities. */
  hooks?: Hook[];
  /**
   * Hooks on the per-head LN1 scales this module computes: `blocks.{l}.ln1.hook_scale_q|k|v`,
   * [G·B, pos, head, 1]. (The model's own `ln1.hook_scale` does not see the per-head inputs.)
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
 * Patch terms Σ_u coef[g, t, u] · (src(u) − live(u)) for `T` targets, [G·B, pos, T, d].
 * live: the first n live outputs, each [G·B, pos, d]; src [≥n, B, pos, d].
 */
function patchTerm(coef: tf.Tensor3D, live: tf.Tensor[], src: tf.Tensor, G: number): tf.Tensor {
  const n = coef.shape[2];
  const T = coef.shape[1];
  const [, B, P, D] = src.shape as number[];
  const X = B * P * D;
  const liveS = tf.stack(live.slice(0, n).map((t) => tf.reshape(t, [G, X])), 1); // [G, n, X]
  const srcS = tf.reshape(tf.slice(src, [0, 0, 0, 0], [n, B, P, D]), [1, n, X]); // [1, n, X]
  const y = tf.reshape(tf.matMul(coef, tf.sub(srcS, liveS)), [G, T, B, P, D]); // [G, T, B, P, D]
  if (T === 1) return tf.reshape(y, [G * B, P, 1, D]);
  return tf.reshape(tf.transpose(y, [0, 2, 3, 1, 4]), [G * B, P, T, D]); // [G·B, P, T, D]
}

/**
 * Run the model with per-input residual streams. Not tidied: call inside `tf.tidy` (or a gradient
 * function) and keep what you return.
 */
export function graphForwardRaw(model: HookedTransformer, graph: CircuitGraph, tokens: number[][], opts: GraphForwardOptions = {}): GraphForwardResult {
  const cfg = model.cfg;
  const { nLayers: L, nHeads: H, dModel: D, dHead: Dh } = cfg;
  if (graph.nLayers !== L || graph.nHeads !== H) {
    throw new Error(`graph is ${graph.nLayers} layers × ${graph.nHeads} heads but the model is ${L} × ${H}`);
  }
  const G = opts.groups ?? 1;
  const B = tokens.length;
  const E = graph.nEdges;
  if (opts.patch) {
    if (opts.patch.coef.length !== G * E) throw new Error(`patch.coef has ${opts.patch.coef.length} values, expected groups × edges = ${G} × ${E}`);
    const s = opts.patch.src.shape;
    if (s.length !== 4 || s[0] !== graph.nodes.length - 1 || s[1] !== B || s[3] !== D) {
      throw new Error(`patch.src must be [${graph.nodes.length - 1}, ${B}, pos, ${D}], got [${s.join(', ')}]`);
    }
  }
  const rules = opts.rules ?? {};
  const gHooks = compileHooks(opts.graphHooks);
  const coef = opts.patch?.coef;
  const src = opts.patch?.src;
  const tokensG = G === 1 ? tokens : Array.from({ length: G }, () => tokens).flat();
  const live: tf.Tensor[] = []; // node outputs in node order
  let residPre: tf.Tensor | undefined;
  let origMid: tf.Tensor | undefined;
  let mlpOut: tf.Tensor | undefined;
  let midChanged = false;

  /** Per-head LN1 and projection of per-head residuals R [GB, p, H, d] for q (0), k (1) or v (2): [GB, p, H, dh]. */
  const headProject = (R: tf.Tensor, which: 0 | 1 | 2, l: number): tf.Tensor => {
    const [gb, p] = R.shape as number[];
    const lnW = model.params.get(`h.${l}.ln_1.weight`)!;
    const lnB = model.params.get(`h.${l}.ln_1.bias`)!;
    const W = model.params.get(`h.${l}.attn.c_attn.weight`)!; // [d, 3d]
    const bias = model.params.get(`h.${l}.attn.c_attn.bias`)!; // [3d]
    const xc = tf.sub(R, tf.mean(R, -1, true)); // [GB, p, H, d]
    let scale = tf.sqrt(tf.add(tf.mean(tf.square(xc), -1, true), cfg.eps)); // [GB, p, H, 1]
    if (gHooks) scale = gHooks.run(`blocks.${l}.ln1.hook_scale_${'qkv'[which]}`, scale);
    if (rules.ln) scale = stopGradient(scale);
    const n = tf.add(tf.mul(tf.div(xc, scale), lnW), lnB); // [GB, p, H, d]
    // One 2-D matmul per head: wasm's batched 3-D matmul is much slower than its 2-D kernel.
    const nT = tf.reshape(tf.transpose(n, [2, 0, 1, 3]), [H, gb * p, D]); // [H, GB·p, d]
    const perHead = Array.from({ length: H }, (_, h) => {
      const nh = tf.reshape(tf.slice(nT, [h, 0, 0], [1, gb * p, D]), [gb * p, D]); // [GB·p, d]
      const Wh = tf.slice(W, [0, which * D + h * Dh], [D, Dh]) as tf.Tensor2D; // [d, dh]
      const bh = tf.slice(bias, [which * D + h * Dh], [Dh]); // [dh]
      return tf.add(tf.matMul(nh, Wh), bh); // [GB·p, dh]
    });
    return tf.reshape(tf.transpose(tf.stack(perHead), [1, 0, 2]), [gb, p, H, Dh]); // [GB, p, H, dh]
  };

  let collected: tf.Tensor4D | undefined;
  const hooks: Hook[] = [...(opts.hooks ?? [])];
  hooks.push({
    name: 'blocks.0.hook_resid_pre',
    fn: (x) => {
      let e = x;
      if (opts.inputOverride) {
        const o = opts.inputOverride;
        e = o.shape[0] === x.shape[0] ? o : tf.tile(o, [G, 1, 1]);
      }
      live.push(e);
      return e === x ? undefined : e;
    },
  });
  for (let l = 0; l < L; l++) {
    const ts = layerTargets(graph, l);
    const nUpHead = ts[0].nUp;
    const byInput = [ts.slice(0, H), ts.slice(H, 2 * H), ts.slice(2 * H, 3 * H)];
    hooks.push({ name: `blocks.${l}.hook_resid_pre`, fn: (x) => void (residPre = x) });
    (['q', 'k', 'v'] as const).forEach((name, which) => {
      hooks.push({
        name: `blocks.${l}.attn.hook_${name}`,
        fn: () => {
          const c = src ? coefTensor(coef, G, E, byInput[which], nUpHead) : undefined;
          const probe = opts.probes?.[name][l];
          if (!c && !probe && !gHooks) return undefined; // unchanged: the model's own q/k/v
          // Broadcasting adds, not broadcastTo (wasm's Tile kernel is slow): R [GB, p, H, d].
          const r1 = tf.expandDims(residPre!, 2); // [GB, p, 1, d]
          let R: tf.Tensor = c ? tf.add(r1, patchTerm(c, live, src!, G)) : tf.add(r1, tf.zeros([1, 1, H, 1]));
          if (probe) R = tf.add(R, probe);
          return headProject(R, which as 0 | 1 | 2, l);
        },
      });
    });
    hooks.push({
      name: `blocks.${l}.attn.hook_result`,
      fn: (x) => {
        // Per-head outputs [GB, p, d]: one transpose, then contiguous slices (Unpack is slow on wasm).
        const [gb, p] = x.shape as number[];
        const xt = tf.transpose(x, [2, 0, 1, 3]); // [H, GB, p, d]
        for (let h = 0; h < H; h++) live.push(tf.reshape(tf.slice(xt, [h, 0, 0, 0], [1, gb, p, D]), [gb, p, D]));
      },
    });
    hooks.push({
      name: `blocks.${l}.hook_resid_mid`,
      fn: (x) => {
        origMid = x;
        const m = ts[3 * H];
        const c = src ? coefTensor(coef, G, E, [m], m.nUp) : undefined;
        const probe = opts.probes?.mlp[l];
        midChanged = !!(c || probe);
        if (!midChanged) return undefined;
        let R = x;
        if (c) R = tf.add(R, tf.squeeze(patchTerm(c, live, src!, G), [2]));
        if (probe) R = tf.add(R, probe);
        return R;
      },
    });
    hooks.push({
      name: `blocks.${l}.hook_mlp_out`,
      fn: (x) => {
        mlpOut = x;
        if (live.length !== mlpNode(H, l)) throw new Error(`internal: ${live.length} node outputs recorded before m${l}`);
        live.push(x);
      },
    });
    hooks.push({
      name: `blocks.${l}.hook_resid_post`,
      fn: (x) => {
        let r = midChanged ? tf.add(origMid!, mlpOut!) : x; // the live residual stream
        if (l === L - 1) {
          const t = layerTargets(graph, L)[0];
          const c = src ? coefTensor(coef, G, E, [t], t.nUp) : undefined;
          if (c) r = tf.add(r, tf.squeeze(patchTerm(c, live, src!, G), [2]));
          if (opts.probes) r = tf.add(r, opts.probes.logits);
        }
        // The model's forward is tidied: keep the stacked outputs past its scope.
        if (l === L - 1 && opts.collectOutputs) collected = tf.keep(tf.stack(live)) as tf.Tensor4D;
        return r === x ? undefined : r;
      },
    });
  }
  try {
    const logits = model.forward(tokensG, { hooks, rules: opts.rules, lastPositionOnly: opts.lastPositionOnly ?? true });
    return { logits, outputs: collected };
  } catch (err) {
    collected?.dispose();
    throw err;
  }
}

/**
 * {@link graphForwardRaw} in its own tidy scope: returns logits [G·B, 1 or pos, vocab] and, when
 * `collectOutputs` is set, the stacked live node outputs [nNodes − 1, G·B, pos, d_model]. Caller disposes.
 */
export function graphForward(model: HookedTransformer, graph: CircuitGraph, tokens: number[][], opts: GraphForwardOptions = {}): { logits: tf.Tensor3D; outputs?: tf.Tensor4D } {
  return tf.tidy(() => {
    const r = graphForwardRaw(model, graph, tokens, opts);
    return { logits: r.logits, ...(r.outputs ? { outputs: r.outputs } : {}) };
  });
}
