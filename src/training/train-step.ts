/**
 * One optimisation step of a trainable HookedTransformer on a padded token batch.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../hooks/hooked-transformer.ts';
import type { AdamW } from './adamw.ts';
import type { TokenBatch } from './batches.ts';
import { nextTokenLoss } from './loss.ts';

/** Result of {@link trainStep}. */
export interface StepResult {
  loss: number;
  gradNorm: number;
}

/** The model's parameters as variables; throws if it was not built with `{trainable: true}`. */
export function trainableParams(model: HookedTransformer): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [name, t] of model.params) {
    if (!(t instanceof tf.Variable)) throw new Error(`parameter "${name}" is not a tf.Variable; build the model with {trainable: true}`);
    out.set(name, t);
  }
  return out;
}

/**
 * Forward (one-hot embedding, so `wte` gets gradients on wasm), masked next-token loss,
 * backward and an optimizer update. Leaves no tensors behind.
 */
export function trainStep(model: HookedTransformer, params: Map<string, tf.Variable>, opt: AdamW, batch: TokenBatch, lr: number): StepResult {
  const vars = [...params.values()];
  let gradNorm = 0;
  const loss = tf.tidy(() => {
    const tokens = tf.tensor2d(batch.tokens, [batch.batch, batch.pos], 'int32');
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(model.forward(tokens, { oneHotEmbed: true }), tokens, batch.lengths), vars);
    const byName: Record<string, tf.Tensor> = {};
    for (const [name, v] of params) byName[name] = grads[v.name];
    gradNorm = opt.step(byName, lr).gradNorm;
    return value;
  });
  const out = loss.dataSync()[0];
  loss.dispose();
  return { loss: out, gradNorm };
}
