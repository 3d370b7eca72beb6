/**
 * Names of the patchable components and sweep methods, in the one display order every table,
 * page and plot uses (tf-free, so the viewer server can import it). The method names come from
 * the one registry, methods.ts.
 */
import { DEFAULT_NODE_METHODS, NODE_GROUND_TRUTH, NODE_METHODS, type NodeMethod } from '../methods.ts';

/** Names of the patchable components, in display order. */
export const COMPONENT_NAMES = ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'z', 'z_pos', 'q', 'k', 'v', 'pattern'] as const;
/** A patchable component. */
export type ComponentName = (typeof COMPONENT_NAMES)[number];

/** The methods a sweep can run, in display order (activation patching, the reference, first): the registry's node methods. */
export const SWEEP_METHODS: readonly NodeMethod[] = NODE_METHODS;
/** A sweep method name (a node method). */
export type SweepMethod = NodeMethod;

/**
 * What a patching sweep runs unless told otherwise: `relp demo`, `relp patch` and `runSweep` share
 * these (with `IOI_DEFAULTS` of tasks/dataset.ts for the prompts), so `relp patch --task ioi` prints the demo's table.
 * `metric` is the CLI name of the normalised logit difference; `rules` the RelP paper code's preset.
 */
export const SWEEP_DEFAULTS = Object.freeze({
  methods: DEFAULT_NODE_METHODS,
  components: Object.freeze(['resid_pre', 'attn_out', 'mlp_out', 'z'] as const),
  metric: 'normalised-logit-diff',
  direction: 'denoising',
  rules: 'relp',
} as const);

/** The method every other one is compared with. */
export const REFERENCE_METHOD = NODE_GROUND_TRUTH;

/** Display order of known components; others follow alphabetically. */
export const COMPONENT_ORDER: readonly string[] = COMPONENT_NAMES;
/** Display order of known methods; others follow alphabetically. */
export const METHOD_ORDER: readonly string[] = SWEEP_METHODS;

/** Sort unique names by a preferred order, unknown names last in alphabetical order. */
export function orderBy(names: Iterable<string>, order: readonly string[]): string[] {
  const rank = (n: string) => {
    const k = order.indexOf(n);
    return k < 0 ? order.length : k;
  };
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Run-file names of two metrics whose meaning the reports need without loading TensorFlow.js:
 * KL to the clean distribution (0, its minimum, on the clean run) and the normalised logit
 * difference (in units of clean − corrupt). metrics.ts defines the metrics with these names.
 */
export const KL_METRIC_NAME = 'neg_kl';
export const NORMALISED_METRIC_NAME = 'normalised_logit_diff';
