/**
 * AdamW (decoupled weight decay, Loshchilov & Hutter) with global-norm gradient clipping,
 * hand-rolled on tfjs variables because tfjs' Adam has no weight decay.
 *
 * Update per parameter p with gradient g at step t (1-based), after clipping:
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − lr·wd·p − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)     (wd only on matrices)
 * This is the PyTorch `torch.optim.AdamW` update.
 */
import * as tf from '@tensorflow/tfjs';

/** Hyper-parameters of {@link AdamW}. */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /**
   * Decoupled weight decay, applied to weight matrices only: parameters of rank >= 2 that are not
   * biases (canonical bias names are `*.b_*`, e.g. `attn.b_Q` [head, d_head] is rank 2 but a bias).
   */
  weightDecay?: number;
  /** Clip the global gradient norm to this value (0 or undefined: no clipping). */
  clipNorm?: number;
}

/** Result of one optimizer step. */
export interface StepInfo {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
}

/** Whether weight decay applies: matrices, not biases (see {@link AdamWOptions.weightDecay}). */
export function isDecayed(name: string, p: tf.Tensor): boolean {
  return p.rank >= 2 && !/(^|\.)b_[^.]*$/.test(name);
}

/** AdamW over a fixed set of named variables. Call {@link AdamW.dispose} to free its state. */
export class AdamW {
  private readonly params: Map<string, tf.Variable>;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly clipNorm: number;
  /** Number of steps taken so far. */
  t = 0;

  constructor(params: Map<string, tf.Variable>, opts: AdamWOptions = {}) {
    this.params = params;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.clipNorm = opts.clipNorm ?? 0;
    for (const [name, p] of params) {
      // tidy frees the zeros tensors; the variables survive it.
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false, `adamw_m/${name}`)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false, `adamw_v/${name}`)));
    }
  }

  /**
   * Apply one update with `lr`. `grads` must hold a gradient for every parameter (same shapes);
   * they are not disposed here (the caller's tidy does that).
   */
  step(grads: Record<string, tf.Tensor>, lr: number): StepInfo {
    for (const name of this.params.keys()) {
      if (!grads[name]) throw new Error(`AdamW.step: no gradient for parameter "${name}"`);
    }
    this.t++;
    const t = this.t;
    return tf.tidy(() => {
      const sq = [...this.params.keys()].map((n) => tf.sum(tf.square(grads[n])));
      const norm = Math.sqrt(tf.addN(sq).dataSync()[0]);
      if (!Number.isFinite(norm)) throw new Error(`AdamW.step: gradient norm is ${norm} at step ${t}`);
      const scale = this.clipNorm > 0 && norm > this.clipNorm ? this.clipNorm / (norm + 1e-6) : 1;
      const bc1 = 1 - this.beta1 ** t;
      const bc2 = 1 - this.beta2 ** t;
      for (const [name, p] of this.params) {
        const g = scale === 1 ? grads[name] : tf.mul(grads[name], scale);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), this.eps));
        const decayed = isDecayed(name, p) && this.weightDecay > 0 ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
      return { gradNorm: norm };
    });
  }

  /** Free the optimizer state (not the parameters). */
  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
    this.m.clear();
    this.v.clear();
  }
}
