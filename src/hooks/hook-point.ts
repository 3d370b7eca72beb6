/**
 * The single hook mechanism: a set of callbacks keyed by hook name, applied at each hook point.
 * A forward with no hooks gets `undefined` and pays nothing beyond one `undefined` check.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * A hook callback. It may read the activation (return nothing) or replace it (return a tensor
 * of the same shape). Tensors it returns are owned by the forward's tidy scope.
 */
export type HookFn = (activation: tf.Tensor, ctx: { name: string }) => tf.Tensor | void;

/** A hook attached to a named hook point. */
export interface Hook {
  name: string;
  fn: HookFn;
}

/** Applies the hooks registered at a point: returns the (possibly replaced) activation. */
export type HookRunner = (name: string, x: tf.Tensor) => tf.Tensor;

/** Compiled hooks for one forward call. */
export interface CompiledHooks {
  run: HookRunner;
  /** Whether any hook is attached at `name` (used to skip optional computations). */
  has: (name: string) => boolean;
}

/** Group hooks by name; `undefined` when there are none so the forward skips hook work. */
export function compileHooks(hooks: readonly Hook[] | undefined): CompiledHooks | undefined {
  if (!hooks || hooks.length === 0) return undefined;
  const byName = new Map<string, HookFn[]>();
  for (const h of hooks) {
    const list = byName.get(h.name) ?? [];
    list.push(h.fn);
    byName.set(h.name, list);
  }
  const run: HookRunner = (name, x) => {
    const fns = byName.get(name);
    if (!fns) return x;
    let cur = x;
    for (const fn of fns) {
      const out = fn(cur, { name });
      if (out === undefined) continue;
      if (!(out instanceof tf.Tensor)) throw new Error(`hook at "${name}" returned a non-tensor value`);
      if (out.shape.length !== cur.shape.length || out.shape.some((s, i) => s !== cur.shape[i])) {
        throw new Error(`hook at "${name}" returned shape [${out.shape.join(', ')}], expected [${cur.shape.join(', ')}]`);
      }
      cur = out;
    }
    return cur;
  };
  return { run, has: (name) => byName.has(name) };
}
