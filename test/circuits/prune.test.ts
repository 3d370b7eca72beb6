import { describe, expect, it } from 'vitest';
import { buildGraph, edgeAt, edgeIndex } from '../../src/circuits/graph.ts';
import { countEdges, pruneDangling, rankEdges, selectEdges, selectGreedy, selectThreshold, selectTopN } from '../../src/circuits/prune.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';

const g = buildGraph(2, 2);
const r = mulberry32(1);
const scores = Float32Array.from({ length: g.nEdges }, () => r() * 2 - 1);

describe('circuit selection', () => {
  it('top-n keeps the n largest |scores|; threshold keeps |score| ≥ t', () => {
    const m = selectTopN(g, scores, 7);
    expect(countEdges(m)).toBe(7);
    const minIn = Math.min(...Array.from(scores).filter((_, e) => m[e]).map(Math.abs));
    const maxOut = Math.max(...Array.from(scores).filter((_, e) => !m[e]).map(Math.abs));
    expect(minIn).toBeGreaterThanOrEqual(maxOut);
    const t = selectThreshold(g, scores, 0.5);
    for (let e = 0; e < g.nEdges; e++) expect(t[e]).toBe(Math.abs(scores[e]) >= 0.5 ? 1 : 0);
    expect(rankEdges([1, -3, 2])).toEqual([1, 2, 0]);
    expect(() => selectTopN(g, scores.slice(1), 3)).toThrow(/scores have/);
    expect(() => selectEdges(g, scores, 'x' as 'topn', 1)).toThrow(/unknown selection "x"/);
  });

  it('greedy grows from the logits: each edge target is in the circuit when picked', () => {
    const m = selectGreedy(g, scores, 12);
    expect(countEdges(m)).toBe(12);
    // every selected edge's target node reaches the logits through selected edges
    const reach = new Set<number>([g.nodes.length - 1]);
    for (let changed = true; changed; ) {
      changed = false;
      for (let e = 0; e < g.nEdges; e++) {
        const { source, target } = edgeAt(g, e);
        if (m[e] && reach.has(target.node) && !reach.has(source.index)) {
          reach.add(source.index);
          changed = true;
        }
      }
    }
    for (let e = 0; e < g.nEdges; e++) if (m[e]) expect(reach.has(edgeAt(g, e).target.node)).toBe(true);
  });

  it('pruning drops edges not on an input → logits path', () => {
    const m = new Uint8Array(g.nEdges);
    const on = (s: string, t: string) => (m[edgeIndex(g, s, t)] = 1);
    on('input', 'a0.h0<v>');
    on('a0.h0', 'logits'); // path input → a0.h0 → logits
    on('a0.h1', 'm1'); // a0.h1 has no input edge and m1 does not reach the logits
    on('input', 'm0'); // m0 does not reach the logits
    on('a1.h1', 'logits'); // a1.h1 has no input
    const p = pruneDangling(g, m);
    const kept = Array.from(p.keys()).filter((e) => p[e]).map((e) => `${edgeAt(g, e).source.id}->${edgeAt(g, e).target.id}`);
    expect(kept.sort()).toEqual(['a0.h0->logits', 'input->a0.h0<v>']);
  });
});
