/**
 * The one list of attribution methods: node methods (scores per component cell, compared with
 * activation patching) and edge methods (scores per edge of the circuit graph, compared with exact
 * edge patching). Every other list of method names (types, CLI parsing and help, shard keys, plan
 * building, validation messages) is derived from {@link METHODS}; the names are the ones run files,
 * shard keys and the CLI use, so they never change here without a file-contract change.
 *
 * tf-free, so the viewer server and the CLI's help can import it without loading TensorFlow.js.
 */

/** One attribution method (in the style of auto-circuit's method registry). */
export interface MethodInfo {
  /** Name in files, shard keys and the CLI. */
  readonly name: string;
  /** `node`: scores per component cell; `edge`: scores per graph edge. */
  readonly kind: 'node' | 'edge';
  /** The method the others at its level are compared with (real patching, no approximation). */
  readonly groundTruth: boolean;
  /** Uses an LRP rule set ({@link Rules}) in its backward pass. */
  readonly takesRules: boolean;
  /** Uses interpolation steps (EAP-IG's `igSteps`). */
  readonly takesSteps: boolean;
  /** Scores are magnitudes (compared with |ground truth|). */
  readonly magnitude: boolean;
  /** Part of a patching sweep unless told otherwise (`SWEEP_DEFAULTS.methods`). */
  readonly sweepDefault: boolean;
  /** One line for help text and docs. */
  readonly description: string;
}

/** Every method, node methods first, each level in display order. */
export const METHODS = [
  { name: 'activation', kind: 'node', groundTruth: true, takesRules: false, takesSteps: false, magnitude: false, sweepDefault: true, description: 'activation patching (the ground truth)' },
  { name: 'atp', kind: 'node', groundTruth: false, takesRules: false, takesSteps: false, magnitude: false, sweepDefault: true, description: 'attribution patching (first-order Taylor)' },
  { name: 'atp*', kind: 'node', groundTruth: false, takesRules: false, takesSteps: false, magnitude: true, sweepDefault: false, description: 'AtP* (QK fix + GradDrop; magnitudes)' },
  { name: 'relp', kind: 'node', groundTruth: false, takesRules: true, takesSteps: false, magnitude: false, sweepDefault: true, description: 'relevance patching (LRP-modified gradient)' },
  { name: 'eap', kind: 'edge', groundTruth: false, takesRules: false, takesSteps: false, magnitude: false, sweepDefault: false, description: 'edge attribution patching' },
  { name: 'eap-relp', kind: 'edge', groundTruth: false, takesRules: true, takesSteps: false, magnitude: false, sweepDefault: false, description: 'EAP with the LRP-modified gradient' },
  { name: 'eap-ig', kind: 'edge', groundTruth: false, takesRules: false, takesSteps: true, magnitude: false, sweepDefault: false, description: 'EAP with integrated gradients' },
  { name: 'exact', kind: 'edge', groundTruth: true, takesRules: false, takesSteps: false, magnitude: false, sweepDefault: false, description: 'exact edge patching (the ground truth)' },
] as const satisfies readonly MethodInfo[];

/** One entry of {@link METHODS}, with its literal name and flags. */
export type RegisteredMethod = (typeof METHODS)[number];

/** Any method name. */
export type MethodName = RegisteredMethod['name'];
/** A node method: activation, atp, atp*, relp. */
export type NodeMethod = Extract<RegisteredMethod, { kind: 'node' }>['name'];
/** A node method estimated from gradients (every node method but the ground truth). */
export type NodeGradMethod = Extract<RegisteredMethod, { kind: 'node'; groundTruth: false }>['name'];
/** An edge method: eap, eap-relp, eap-ig, exact. */
export type EdgeMethod = Extract<RegisteredMethod, { kind: 'edge' }>['name'];
/** An edge method estimated from gradients (every edge method but the ground truth). */
export type EdgeGradMethod = Extract<RegisteredMethod, { kind: 'edge'; groundTruth: false }>['name'];

function namesWhere<N extends MethodName>(keep: (m: RegisteredMethod) => boolean): readonly N[] {
  return Object.freeze(METHODS.filter(keep).map((m) => m.name as N));
}

/** Node methods in display order (the ground truth first). */
export const NODE_METHODS = namesWhere<NodeMethod>((m) => m.kind === 'node');
/** Gradient node methods a sweep shards over prompts. */
export const NODE_GRAD_METHODS = namesWhere<NodeGradMethod>((m) => m.kind === 'node' && !m.groundTruth);
/** Edge methods in display order (the ground truth last). */
export const EDGE_METHODS = namesWhere<EdgeMethod>((m) => m.kind === 'edge');
/** Gradient edge methods a sweep shards over prompts. */
export const EDGE_GRAD_METHODS = namesWhere<EdgeGradMethod>((m) => m.kind === 'edge' && !m.groundTruth);
/** Node methods a patching sweep runs unless told otherwise. */
export const DEFAULT_NODE_METHODS = namesWhere<NodeMethod>((m) => m.kind === 'node' && m.sweepDefault);

/** The node method every other one is compared with. */
export const NODE_GROUND_TRUTH = METHODS.find((m) => m.kind === 'node' && m.groundTruth)!.name as NodeMethod;
/** The edge method every other one is compared with. */
export const EDGE_GROUND_TRUTH = METHODS.find((m) => m.kind === 'edge' && m.groundTruth)!.name as EdgeMethod;

/** The registry entry of a method name, or undefined for an unknown name. */
export function methodInfo(name: string): MethodInfo | undefined {
  return METHODS.find((m) => m.name === name);
}

/** True when one of the names takes a rule set. */
export function takesRules(names: readonly string[]): boolean {
  return names.some((n) => methodInfo(n)?.takesRules);
}
/** True when one of the names takes interpolation steps. */
export function takesSteps(names: readonly string[]): boolean {
  return names.some((n) => methodInfo(n)?.takesSteps);
}

/** A regex alternation matching exactly the given names (for shard keys). */
export function namesPattern(names: readonly string[]): string {
  return `(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`;
}

/** Check one name against a list, with an error that lists the choices (`what`: e.g. `circuit method`). */
export function parseMethodName<N extends string>(name: string, choices: readonly N[], what = 'method'): N {
  if (!(choices as readonly string[]).includes(name)) throw new Error(`unknown ${what} "${name}" (use one of: ${choices.join(', ')})`);
  return name as N;
}
