import { describe, expect, it } from 'vitest';
import { buildGraph, edgeAt, edgeCountFormula, edgeIndex, edgeName } from '../../src/circuits/graph.ts';

/** Count edges by brute force from the rule "a node reads every node of earlier layers (MLPs also their own layer's heads)". */
function bruteForceCount(L: number, H: number): number {
  type N = { layer: number; kind: 'in' | 'head' | 'mlp' | 'out' };
  const nodes: N[] = [{ layer: -1, kind: 'in' }];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) nodes.push({ layer: l, kind: 'head' });
    nodes.push({ layer: l, kind: 'mlp' });
  }
  const out: N = { layer: L, kind: 'out' };
  let n = 0;
  const reads = (u: N, v: N) => u.layer < v.layer || (v.kind === 'mlp' && u.kind === 'head' && u.layer === v.layer);
  for (const v of [...nodes, out]) {
    if (v.kind === 'in') continue;
    const inputs = v.kind === 'head' ? 3 : 1;
    for (const u of nodes) if (reads(u, v)) n += inputs;
  }
  return n;
}

describe('circuit graph', () => {
  it('has 32,491 edges for GPT-2 small (12 × 12), as EAP-IG', () => {
    expect(edgeCountFormula(12, 12)).toBe(32491);
    expect(buildGraph(12, 12).nEdges).toBe(32491);
  });

  it('matches a brute-force count for several shapes', () => {
    for (const [L, H] of [[1, 1], [2, 2], [3, 4], [4, 4], [6, 8]]) {
      expect(buildGraph(L, H).nEdges).toBe(bruteForceCount(L, H));
      expect(edgeCountFormula(L, H)).toBe(bruteForceCount(L, H));
    }
  });

  it('names nodes and edges like EAP-IG and resolves indices both ways', () => {
    const g = buildGraph(2, 2);
    expect(g.nodes.map((n) => n.id)).toEqual(['input', 'a0.h0', 'a0.h1', 'm0', 'a1.h0', 'a1.h1', 'm1', 'logits']);
    expect(edgeName(g, 0)).toBe('input->a0.h0<q>');
    const e = edgeIndex(g, 'a0.h1', 'a1.h0<k>');
    expect(edgeName(g, e)).toBe('a0.h1->a1.h0<k>');
    expect(edgeAt(g, g.nEdges - 1).source.id).toBe('m1');
    expect(edgeAt(g, g.nEdges - 1).target.id).toBe('logits');
    expect(() => edgeIndex(g, 'm1', 'a1.h0<q>')).toThrow(/not upstream/);
    expect(() => edgeIndex(g, 'a0.h0', 'a9.h0<q>')).toThrow(/unknown edge target/);
    expect(() => edgeAt(g, g.nEdges)).toThrow(/out of range/);
    // every edge index round-trips
    for (let i = 0; i < g.nEdges; i++) {
      const { source, target } = edgeAt(g, i);
      expect(edgeIndex(g, source.id, target.id)).toBe(i);
    }
  });
});
