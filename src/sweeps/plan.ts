/**
 * A sweep as a list of shards. A plan is everything a shard needs besides the model weights
 * (the model reference and its weight hash, the dataset, the methods); a shard key names one
 * independent piece of it. Keys:
 *
 *   act/<component>/L<a>-<b>   activation patching of one component, layers a..b (all prompts)
 *   grad/<method>/P<a>-<b>     AtP / AtP* / RelP over prompts a..b (all components)
 *   edge/exact/E<a>-<b>        exact edge patching of edges a..b (all prompts)
 *   edge/<method>/P<a>-<b>     EAP / EAP-RelP / EAP-IG edge scores over prompts a..b
 *   faith/<method>/K<n>        one faithfulness-curve point: the circuit of n edges chosen by <method>'s scores
 *   noop/<i>                   a shard that does nothing (queue overhead benchmark)
 *
 * Ranges are inclusive. The shard list depends only on the plan, never on the number of workers,
 * so every way of running it (one thread, N threads, N machines, resumed) merges the same shards.
 */
import { createHash } from 'node:crypto';
import type { ModelConfig } from '../models/config.ts';
import type { PromptPair } from '../tasks/types.ts';
import { componentSpec, gridCells, parseComponents, type ComponentName } from '../patching/components.ts';
import type { Direction } from '../patching/activation-patching.ts';
import { buildGraph, type GqaConvention } from '../circuits/graph.ts';
import { graphTopology } from '../models/topology.ts';
import { EDGE_GRAD_METHODS, EDGE_GROUND_TRUTH, NODE_GRAD_METHODS, namesPattern, type EdgeGradMethod, type NodeGradMethod } from '../methods.ts';
import type { Rules } from '../rules/rules.ts';

/** Gradient methods a plan can shard (over prompts): the registry's gradient node methods. */
export const GRAD_METHODS: readonly NodeGradMethod[] = NODE_GRAD_METHODS;
/** A gradient method name. */
export type GradMethod = NodeGradMethod;

export { EDGE_GRAD_METHODS, type EdgeGradMethod };

const GRAD_KEY = new RegExp(`^grad\\/${namesPattern(GRAD_METHODS)}\\/P(\\d+)-(\\d+)$`);
const EDGE_GRAD_KEY = new RegExp(`^edge\\/${namesPattern(EDGE_GRAD_METHODS)}\\/P(\\d+)-(\\d+)$`);

/** Where a worker finds the model: the embedded model, a folder, or a Hugging Face repo id. */
export interface ModelRef {
  /** `embedded`, an absolute folder path, or an HF repo id (`owner/name`). */
  ref: string;
  /** sha256 over every weight tensor (HookedTransformer.weightHash); shard results must carry the same. */
  hash: string;
  /** The model's configuration (checked by workers too). */
  config: ModelConfig;
}

/** Everything a shard needs, serialisable (it travels to threads and through Redis). */
export interface SweepPlan {
  version: 1;
  model: ModelRef;
  pairs: PromptPair[];
  /** CLI metric name (see METRICS). */
  metric: string;
  direction: Direction;
  /** LRP rules of `relp` / `eap-relp`: a preset name or a rule set. */
  rules?: Rules;
  /** Sequences per forward (activation patching / exact edges). */
  batch?: number;
  activation?: { components: ComponentName[]; layersPerShard: number };
  gradient?: { methods: GradMethod[]; components: ComponentName[]; promptsPerShard: number };
  /** Exact edge patching; `range` [a, b] limits it to edges a..b (the others are NaN in the merge). */
  edges?: { edgesPerShard: number; range?: [number, number] };
  /** EAP / EAP-RelP / EAP-IG edge scores over prompt shards (`rules` for eap-relp, `igSteps` for eap-ig). */
  edgeGrad?: { methods: EdgeGradMethod[]; promptsPerShard: number; igSteps?: number };
  /**
   * Faithfulness curves: one shard per (method, circuit size). Each curve's `scores` [nEdges] choose
   * its circuits (top-n or greedy, dangling edges pruned); sizes outside (0, nEdges) are dropped.
   */
  faith?: { curves: { method: string; scores: number[] }[]; sizes: number[]; ablation: 'corrupt' | 'mean' | 'zero'; selection: 'topn' | 'greedy' };
  noop?: { count: number };
  /** GQA convention of the edge graph (edges, edgeGrad, faith); absent: `grouped`. */
  gqa?: GqaConvention;
}

/** Curve sizes a faithfulness plan evaluates (in order): integers in (0, nEdges). */
export function faithSizes(plan: SweepPlan): number[] {
  const E = edgeCount(plan.model.config, plan.gqa);
  return (plan.faith?.sizes ?? []).filter((n) => n > 0 && n < E);
}

/** A parsed shard key. */
export type Shard =
  | { kind: 'act'; component: ComponentName; from: number; to: number }
  | { kind: 'grad'; method: GradMethod; from: number; to: number }
  | { kind: 'edge'; from: number; to: number }
  | { kind: 'egrad'; method: EdgeGradMethod; from: number; to: number }
  | { kind: 'faith'; method: string; size: number }
  | { kind: 'noop'; index: number };

/** The key of a shard (inverse of {@link parseShardKey}). */
export function shardKey(s: Shard): string {
  switch (s.kind) {
    case 'act':
      return `act/${s.component}/L${s.from}-${s.to}`;
    case 'grad':
      return `grad/${s.method}/P${s.from}-${s.to}`;
    case 'edge':
      return `edge/exact/E${s.from}-${s.to}`;
    case 'egrad':
      return `edge/${s.method}/P${s.from}-${s.to}`;
    case 'faith':
      return `faith/${s.method}/K${s.size}`;
    case 'noop':
      return `noop/${s.index}`;
  }
}

/** Parse a shard key; throws a clear error on a malformed one. */
export function parseShardKey(key: string): Shard {
  let m = /^act\/([a-z_]+)\/L(\d+)-(\d+)$/.exec(key);
  if (m) return { kind: 'act', component: parseComponents(m[1])[0], from: Number(m[2]), to: Number(m[3]) };
  m = GRAD_KEY.exec(key);
  if (m) return { kind: 'grad', method: m[1] as GradMethod, from: Number(m[2]), to: Number(m[3]) };
  m = /^edge\/exact\/E(\d+)-(\d+)$/.exec(key);
  if (m) return { kind: 'edge', from: Number(m[1]), to: Number(m[2]) };
  m = EDGE_GRAD_KEY.exec(key);
  if (m) return { kind: 'egrad', method: m[1] as EdgeGradMethod, from: Number(m[2]), to: Number(m[3]) };
  m = /^faith\/([a-z0-9*_-]+)\/K(\d+)$/.exec(key);
  if (m) return { kind: 'faith', method: m[1], size: Number(m[2]) };
  m = /^noop\/(\d+)$/.exec(key);
  if (m) return { kind: 'noop', index: Number(m[1]) };
  throw new Error(`malformed shard key "${key}" (expected act/<component>/L<a>-<b>, grad/<method>/P<a>-<b>, edge/${EDGE_GROUND_TRUTH}/E<a>-<b>, edge/<${EDGE_GRAD_METHODS.join('|')}>/P<a>-<b>, faith/<method>/K<n> or noop/<i>)`);
}

function ranges(n: number, per: number): [number, number][] {
  if (!Number.isInteger(per) || per < 1) throw new Error(`shard size must be a positive integer, got ${per}`);
  const out: [number, number][] = [];
  for (let a = 0; a < n; a += per) out.push([a, Math.min(n, a + per) - 1]);
  return out;
}

/** Number of edges of the model's circuit graph (in a GQA convention, default grouped). */
export function edgeCount(cfg: ModelConfig, gqa?: GqaConvention): number {
  return buildGraph(cfg.nLayers, cfg.nHeads, { ...graphTopology(cfg), gqa }).nEdges;
}

/** Every shard key of a plan, in merge order. */
export function planShards(plan: SweepPlan): string[] {
  const cfg = plan.model.config;
  const keys: Shard[] = [];
  if (plan.activation) {
    for (const component of plan.activation.components) {
      for (const [from, to] of ranges(cfg.nLayers, plan.activation.layersPerShard)) keys.push({ kind: 'act', component, from, to });
    }
  }
  if (plan.gradient) {
    for (const method of plan.gradient.methods) {
      for (const [from, to] of ranges(plan.pairs.length, plan.gradient.promptsPerShard)) keys.push({ kind: 'grad', method, from, to });
    }
  }
  if (plan.edges) {
    const E = edgeCount(cfg, plan.gqa);
    const [a, b] = plan.edges.range ?? [0, E - 1];
    if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && a <= b && b < E)) throw new Error(`edge range [${a}, ${b}] is not inside [0, ${E - 1}]`);
    for (const [from, to] of ranges(b - a + 1, plan.edges.edgesPerShard)) keys.push({ kind: 'edge', from: a + from, to: a + to });
  }
  if (plan.edgeGrad) {
    for (const method of plan.edgeGrad.methods) {
      for (const [from, to] of ranges(plan.pairs.length, plan.edgeGrad.promptsPerShard)) keys.push({ kind: 'egrad', method, from, to });
    }
  }
  if (plan.faith) {
    const E = edgeCount(cfg, plan.gqa);
    const seen = new Set<string>();
    for (const c of plan.faith.curves) {
      if (!/^[a-z0-9*_-]+$/.test(c.method)) throw new Error(`faithfulness curve method "${c.method}" must be lower-case letters, digits, *, _ or -`);
      if (seen.has(c.method)) throw new Error(`faithfulness curve method "${c.method}" appears twice`);
      seen.add(c.method);
      if (c.scores.length !== E) throw new Error(`faithfulness curve "${c.method}": scores have ${c.scores.length} values but the graph has ${E} edges`);
    }
    for (const n of plan.faith.sizes) if (!Number.isInteger(n)) throw new Error(`curve sizes must be integers, got ${n}`);
    for (const c of plan.faith.curves) for (const size of faithSizes(plan)) keys.push({ kind: 'faith', method: c.method, size });
  }
  if (plan.noop) for (let i = 0; i < plan.noop.count; i++) keys.push({ kind: 'noop', index: i });
  return keys.map(shardKey);
}

/** Cells of one layer of a component's grid. */
export function cellsPerLayer(cfg: ModelConfig, component: ComponentName, pos: number): number {
  return gridCells(componentSpec(component).cellShape(cfg, pos)).length;
}

/** Work units of a shard (cells, prompts × components, or edges), for progress bars. */
export function shardWork(plan: SweepPlan, key: string): number {
  const s = parseShardKey(key);
  const cfg = plan.model.config;
  const pos = plan.pairs[0]?.cleanIds.length ?? 0;
  if (s.kind === 'act') return (s.to - s.from + 1) * cellsPerLayer(cfg, s.component, pos);
  if (s.kind === 'grad') return (s.to - s.from + 1) * plan.gradient!.components.length;
  if (s.kind === 'edge') return s.to - s.from + 1;
  if (s.kind === 'egrad') return s.to - s.from + 1;
  return 1; // a curve point, a no-op
}

/** Stable JSON: object keys sorted, so equal plans hash equally. */
export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(x);
}

/**
 * The plan's identity: sha256 of its canonical JSON, without the model's location (the same
 * weights found at another path are the same run; the weight hash is part of it).
 */
export function planHash(plan: SweepPlan): string {
  const { ref: _ref, ...model } = plan.model;
  return createHash('sha256').update(canonicalJson({ ...plan, model })).digest('hex');
}
