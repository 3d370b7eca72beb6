/**
 * Rules take effect whenever they are switched on (the reference RelP code fixed the GELU rule
 * at model build time, so switching LRP on later silently left GELU unmodified).
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { configFromHF } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import type { RuleSet } from '../../src/rules/rules.ts';

const cfg = configFromHF({ n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 20 });

describe('rule switching', () => {
  const model = HookedTransformer.fromStateDict(cfg, randomStateDict(cfg, { seed: 9, std: 0.3 }));
  const tokens = [[1, 4, 2, 7, 3]];
  const hook = 'blocks.0.mlp.hook_pre';
  const grad = (rules?: RuleSet) => {
    const r = model.runWithCacheAndGrads(tokens, (lg) => tf.sum(tf.slice(lg, [0, 4, 3], [1, 1, 1])) as tf.Scalar, { names: [hook], rules });
    const g = Array.from(r.grads[hook].dataSync());
    tf.dispose([r.logits, r.value, ...Object.values(r.cache), ...Object.values(r.grads)]);
    return g;
  };

  it('switching the Identity-rule on and off on one model changes the GELU gradient each time', () => {
    const plain1 = grad();
    const ident = grad({ identity: true });
    const plain2 = grad();
    const ident2 = grad({ identity: true });
    expect(plain2).toEqual(plain1);
    expect(ident2).toEqual(ident);
    expect(Math.max(...ident.map((v, i) => Math.abs(v - plain1[i])))).toBeGreaterThan(1e-6);
  });
});
