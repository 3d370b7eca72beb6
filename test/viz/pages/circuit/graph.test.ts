import { describe, expect, it } from 'vitest';
import { buildGraph, countAtLeast, exportSubgraph, keptEdges, methodScores, pathsThrough, thresholdForTopK } from '../../../../src/viz/pages/circuit/graph.js';
import { syntheticCircuit } from '../../../../src/viz/synthetic-run.ts';
import type { CircuitFile } from '../../../../src/contracts/circuit.ts';

const circuit = (): CircuitFile => JSON.parse(JSON.stringify(syntheticCircuit({ nLayers: 3, nHeads: 2, nPos: 4, seed: 5 })));

/** Transitive closure (reflexive) of the kept edges, by repeated relaxation: R[a][b] = a reaches b. */
function closure(n: number, edges: [number, number][]): boolean[][] {
  const R = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i === j));
  for (const [a, b] of edges) R[a]![b] = true;
  for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) if (R[i]![k]) for (let j = 0; j < n; j++) if (R[k]![j]) R[i]![j] = true;
  return R;
}

describe('circuit graph', () => {
  it('maps links to node indices and q/k/v codes', () => {
    const c = circuit();
    const g = buildGraph(c);
    expect(g.methods).toEqual(['atp', 'atp*', 'relp']);
    expect(g.defaultMethod).toBe('relp');
    c.links.forEach((l, e) => {
      expect(g.nodes[g.src[e]!]!.node_id).toBe(l.source);
      expect(g.nodes[g.dst[e]!]!.node_id).toBe(l.target);
      expect(g.input[e]).toBe(l.target_input ? { q: 1, k: 2, v: 3 }[l.target_input] : 0);
    });
  });

  it('keeps exactly the edges with |score| ≥ threshold (checked by filtering)', () => {
    const c = circuit();
    const g = buildGraph(c);
    for (const m of g.methods) {
      const ms = methodScores(g, m);
      const abs = c.links.map((l) => Math.abs(l.scores![m]!));
      // Thresholds at, between and beyond the actual values.
      const probes = [0, ...abs.slice(0, 30), ...abs.slice(0, 30).map((a) => a * 1.0001), Math.max(...abs) * 2];
      for (const t of probes) {
        const expected = c.links.map((_, e) => e).filter((e) => abs[e]! >= t);
        const kept = [...keptEdges(ms, t)];
        expect(new Set(kept)).toEqual(new Set(expected));
        expect(countAtLeast(ms.absSorted, t)).toBe(expected.length);
        // Strongest first.
        for (let i = 1; i < kept.length; i++) expect(abs[kept[i - 1]!]!).toBeGreaterThanOrEqual(abs[kept[i]!]!);
      }
      expect(ms.maxAbs).toBe(Math.max(...abs));
      expect(ms.minAbsNonzero).toBe(Math.min(...abs.filter((a) => a > 0)));
    }
  });

  it('thresholdForTopK keeps k edges when there are no ties', () => {
    const g = buildGraph(circuit());
    const ms = methodScores(g, 'atp');
    for (const k of [1, 5, 17, ms.order.length]) expect(keptEdges(ms, thresholdForTopK(ms, k)).length).toBe(k);
    expect(keptEdges(ms, thresholdForTopK(ms, 10 ** 9)).length).toBe(ms.order.length);
  });

  it('uses weight for the default method when a link lacks per-method scores, and skips it otherwise', () => {
    const c = circuit();
    delete c.links[0]!.scores;
    const g = buildGraph(c);
    expect(methodScores(g, 'relp').score[0]).toBe(c.links[0]!.weight);
    expect(Number.isNaN(methodScores(g, 'atp').score[0])).toBe(true);
    expect(methodScores(g, 'atp').order.length).toBe(c.links.length - 1);
  });

  it('highlights exactly the paths through the pins (checked against a transitive closure)', () => {
    const c = circuit();
    const g = buildGraph(c);
    const ms = methodScores(g, 'relp');
    const N = g.nodes.length;
    for (const keep of [10, 40, c.links.length]) {
      const kept = keptEdges(ms, thresholdForTopK(ms, keep));
      const R = closure(N, [...kept].map((e) => [g.src[e]!, g.dst[e]!]));
      for (const pins of [[g.index.get('a1.h0')!], [g.index.get('m0')!, g.index.get('logits')!], [g.index.get('input')!]]) {
        const res = pathsThrough(g, kept, pins);
        const onPath = (n: number) => pins.some((p) => R[n]![p] || R[p]![n]);
        for (let n = 0; n < N; n++) expect(res.nodes[n], `node ${g.nodes[n]!.node_id}`).toBe(pins.includes(n) ? 2 : onPath(n) ? 1 : 0);
        const keptSet = new Set(kept);
        for (let e = 0; e < c.links.length; e++) {
          const want = keptSet.has(e) && pins.some((p) => R[g.dst[e]!]![p] || R[p]![g.src[e]!]);
          expect(res.edges[e], `edge ${e}`).toBe(want ? 1 : 0);
        }
        expect(res.edgeCount).toBe([...res.edges].filter(Boolean).length);
      }
    }
  });

  it('exports the pinned subgraph, or every kept edge without pins', () => {
    const c = circuit();
    const g = buildGraph(c);
    const ms = methodScores(g, 'atp*');
    const threshold = thresholdForTopK(ms, 25);
    const all = exportSubgraph(g, { method: 'atp*', threshold, pins: [] });
    expect(all.links).toHaveLength(25);
    expect(all.links.every((l) => Math.abs(l.scores!['atp*']!) >= threshold)).toBe(true);
    expect(all.qParams).toMatchObject({ pinnedIds: [], pruningThreshold: threshold });
    const pinned = exportSubgraph(g, { method: 'atp*', threshold, pins: ['m1'] });
    const res = pathsThrough(g, keptEdges(ms, threshold), [g.index.get('m1')!]);
    expect(pinned.links.length).toBe(res.edgeCount);
    const ids = new Set(pinned.nodes.map((n) => n.node_id));
    expect(ids.has('m1')).toBe(true);
    for (const l of pinned.links) expect(ids.has(l.source) && ids.has(l.target)).toBe(true);
    expect((pinned.metadata as { viewer: { pins: string[] } }).viewer.pins).toEqual(['m1']);
  });
});
