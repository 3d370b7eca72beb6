/**
 * What the forward needs from the hook mechanism (src/hooks/ provides it): a runner that may
 * replace an activation, and a test for whether a point is hooked (to skip optional work).
 */
import type * as tf from '@tensorflow/tfjs';

/** Applies the hooks at a point (the identity when there are none). */
export type HookRunner = (name: string, x: tf.Tensor) => tf.Tensor;

/** Hooks compiled for one forward call. */
export interface HookSite {
  run: HookRunner;
  has: (name: string) => boolean;
}

/** The runner that changes nothing. */
export const NO_HOOK: HookRunner = (_n, x) => x;
