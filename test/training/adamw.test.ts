import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { AdamW } from '../../src/training/adamw.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';
import { PYTHON, torchAvailable } from '../helpers/torch-reference.ts';

/** PyTorch: AdamW (wd only on the matrix) + clip_grad_norm_, given per-step gradients. */
const TORCH_SCRIPT = `
import json, sys, torch
d = json.load(sys.stdin)
W = torch.tensor(d['W'], dtype=torch.float64, requires_grad=True)
b = torch.tensor(d['b'], dtype=torch.float64, requires_grad=True)
opt = torch.optim.AdamW([{'params': [W], 'weight_decay': d['wd']}, {'params': [b], 'weight_decay': 0.0}],
                        lr=1.0, betas=(d['beta1'], d['beta2']), eps=d['eps'])
norms = []
for step in d['steps']:
    for g in opt.param_groups: g['lr'] = step['lr']
    W.grad = torch.tensor(step['gW'], dtype=torch.float64)
    b.grad = torch.tensor(step['gb'], dtype=torch.float64)
    norms.append(float(torch.nn.utils.clip_grad_norm_([W, b], d['clip'])))
    opt.step()
print(json.dumps({'W': W.detach().tolist(), 'b': b.detach().tolist(), 'norms': norms}))
`;

function randn(rand: () => number, n: number, scale: number): number[] {
  return Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand()));
}

describe('AdamW', () => {
  it.skipIf(!torchAvailable())('matches torch.optim.AdamW with clip_grad_norm_ (decay on matrices only)', () => {
    const rand = mulberry32(11);
    const W0 = randn(rand, 12, 0.5);
    const b0 = randn(rand, 4, 0.5);
    // Step 2 has a large gradient so clipping is active; the others are below the threshold.
    const steps = [0.1, 5, 0.3].map((scale, i) => ({ lr: [1e-2, 5e-3, 2e-3][i], gW: randn(rand, 12, scale), gb: randn(rand, 4, scale) }));
    const hyper = { beta1: 0.9, beta2: 0.98, eps: 1e-8, wd: 0.1, clip: 1.0 };

    const before = tf.memory().numTensors;
    const W = tf.tidy(() => tf.variable(tf.tensor2d(W0, [3, 4]), true, 'adamw_test_W'));
    const b = tf.tidy(() => tf.variable(tf.tensor1d(b0), true, 'adamw_test_b'));
    const opt = new AdamW(new Map<string, tf.Variable>([['W', W], ['b', b]]), { beta1: hyper.beta1, beta2: hyper.beta2, eps: hyper.eps, weightDecay: hyper.wd, clipNorm: hyper.clip });
    const norms: number[] = [];
    for (const s of steps) {
      const g = { W: tf.tensor2d(s.gW, [3, 4]), b: tf.tensor1d(s.gb) };
      norms.push(opt.step(g, s.lr).gradNorm);
      g.W.dispose();
      g.b.dispose();
    }
    const gotW = Array.from(W.dataSync());
    const gotB = Array.from(b.dataSync());
    opt.dispose();
    W.dispose();
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);

    const shaped = { ...hyper, W: [0, 1, 2].map((r) => W0.slice(r * 4, r * 4 + 4)), b: b0, steps: steps.map((s) => ({ lr: s.lr, gW: [0, 1, 2].map((r) => s.gW.slice(r * 4, r * 4 + 4)), gb: s.gb })) };
    const r = spawnSync(PYTHON, ['-c', TORCH_SCRIPT], { input: JSON.stringify(shaped), encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const ref = JSON.parse(r.stdout) as { W: number[][]; b: number[]; norms: number[] };
    expect(ref.norms[1]).toBeGreaterThan(hyper.clip); // clipping was exercised
    norms.forEach((n, i) => expect(n).toBeCloseTo(ref.norms[i], 4));
    ref.W.flat().forEach((x, i) => expect(gotW[i]).toBeCloseTo(x, 5));
    ref.b.forEach((x, i) => expect(gotB[i]).toBeCloseTo(x, 5));
  });

  it('names the parameter whose gradient is missing', () => {
    const W = tf.tidy(() => tf.variable(tf.zeros([2, 2]), true, 'adamw_test_missing'));
    const opt = new AdamW(new Map([['W', W]]));
    expect(() => opt.step({}, 1e-3)).toThrow(/no gradient for parameter "W"/);
    opt.dispose();
    W.dispose();
  });
});
