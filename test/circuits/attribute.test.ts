import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildGraph, edgeAt } from '../../src/circuits/graph.ts';
import { graphForward } from '../../src/circuits/graph-forward.ts';
import { attributeEdges, exactEdgeScores } from '../../src/circuits/attribute.ts';
import { freezeAtCorrupt, tinyData, tinyModel } from './helpers.ts';

describe('edge attribution', () => {
  const { model } = tinyModel();
  const graph = buildGraph(model.cfg.nLayers, model.cfg.nHeads);
  const data = tinyData();

  it('the unpatched graph forward equals the model forward; with probes too', () => {
    const a = model.forward(data.clean);
    const b = graphForward(model, graph, data.clean, { lastPositionOnly: false, graphHooks: [{ name: 'blocks.0.ln1.hook_scale_q', fn: () => undefined }] });
    const diff = tf.max(tf.abs(tf.sub(a, b.logits))).dataSync()[0];
    expect(diff).toBeLessThan(1e-4);
    a.dispose();
    b.logits.dispose();
  });

  it('eap equals exact edge patching on a model frozen to be linear', () => {
    const frozen = freezeAtCorrupt(model, data);
    const eap = attributeEdges(model, graph, data, { method: 'eap', hooks: frozen.hooks, graphHooks: frozen.graphHooks });
    const exact = exactEdgeScores(model, graph, data, { hooks: frozen.hooks, graphHooks: frozen.graphHooks });
    frozen.dispose();
    const maxAbs = Math.max(...Array.from(exact.scores, Math.abs));
    expect(maxAbs).toBeGreaterThan(0.05); // not a vacuous comparison
    // The frozen model is affine, so the first-order estimate is exact up to float32 rounding
    // (measured 1.3e-6 of the largest score; every architecture: linearised.test.ts).
    console.log(`gpt2 frozen: max |eap − exact| / max |exact| = ${(Math.max(...Array.from(exact.scores, (v, e) => Math.abs(v - eap.scores[e]))) / maxAbs).toExponential(2)}`);
    for (let e = 0; e < graph.nEdges; e++) expect(Math.abs(eap.scores[e] - exact.scores[e]) / maxAbs, `edge ${e}`).toBeLessThan(1e-5);
    // with patterns frozen, q/k edges have no effect in both
    for (let e = 0; e < graph.nEdges; e++) if (edgeAt(graph, e).target.input === 'q') expect(Math.abs(exact.scores[e])).toBeLessThan(1e-5);
  });

  it('eap is the α → 0 limit of real edge patching on the non-linear model (q/k/v edges included)', () => {
    const eap = attributeEdges(model, graph, data, { method: 'eap' });
    const fd = exactEdgeScores(model, graph, data, { alpha: 1e-2 });
    const fd2 = exactEdgeScores(model, graph, data, { alpha: -1e-2 });
    let scale = 0;
    for (let e = 0; e < graph.nEdges; e++) scale = Math.max(scale, Math.abs(eap.scores[e]));
    for (let e = 0; e < graph.nEdges; e++) {
      const central = (fd.scores[e] + fd2.scores[e]) / 2; // central difference
      expect(Math.abs(eap.scores[e] - central), `edge ${e}`).toBeLessThan(2e-3 * Math.max(1, scale));
    }
    // and real patching differs from the linear estimate somewhere (the model is not linear)
    const exact = exactEdgeScores(model, graph, data);
    expect(Math.max(...Array.from(exact.scores, (v, e) => Math.abs(v - eap.scores[e])))).toBeGreaterThan(1e-3);
  });

  it('eap-ig satisfies completeness at the input node: Σ_t score(input → t) → m(clean) − m(corrupt) = 1', () => {
    const ig = attributeEdges(model, graph, data, { method: 'eap-ig', igSteps: 24 });
    let s = 0;
    for (const t of graph.targets) s += ig.scores[t.edgeOffset]; // input is node 0 of every target
    expect(Math.abs(s - 1)).toBeLessThan(1e-2);
    // plain eap (one gradient at the corrupt run) does not satisfy it in general
    const eap = attributeEdges(model, graph, data, { method: 'eap' });
    let s2 = 0;
    for (const t of graph.targets) s2 += eap.scores[t.edgeOffset];
    expect(Math.abs(s2 - 1)).toBeGreaterThan(1e-2);
  });

  it('eap-relp changes the gradient only (same method otherwise); per-position scores sum to the totals', () => {
    const eap = attributeEdges(model, graph, data, { method: 'eap', perPosition: true });
    const relp = attributeEdges(model, graph, data, { method: 'eap-relp', rules: 'relp' });
    expect(Math.max(...Array.from(eap.scores, (v, e) => Math.abs(v - relp.scores[e])))).toBeGreaterThan(1e-4);
    const P = data.pos;
    for (let e = 0; e < graph.nEdges; e++) {
      let s = 0;
      for (let p = 0; p < P; p++) s += eap.perPosition![e * P + p];
      expect(Math.abs(s - eap.scores[e])).toBeLessThan(1e-5);
    }
    expect(() => attributeEdges(model, graph, data, { method: 'nope' as 'eap' })).toThrow(/unknown circuit method "nope"/);
  });

  it('leaves no tensors behind', () => {
    attributeEdges(model, graph, data, { method: 'eap-ig', igSteps: 2 });
    const before = tf.memory().numTensors;
    for (const method of ['eap', 'eap-relp', 'eap-ig', 'exact'] as const) {
      attributeEdges(model, graph, data, { method, igSteps: 2 });
      expect(tf.memory().numTensors, method).toBe(before);
    }
    graphForward(model, graph, data.clean, { collectOutputs: true }).outputs!.dispose();
  });
});
