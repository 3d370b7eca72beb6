import { describe, expect, it } from 'vitest';
import { buildGraph } from '../../../../src/viz/pages/circuit/graph.js';
import { edgeEnds, headOf, layoutGraph, nearestEdge, nearestNode, segmentDist2 } from '../../../../src/viz/pages/circuit/layout.js';
import { syntheticCircuit } from '../../../../src/viz/synthetic-run.ts';

describe('circuit layout', () => {
  it('puts layers bottom-up (input, then attention below MLP per layer, logits on top) and heads left to right', () => {
    const c = syntheticCircuit({ nLayers: 4, nHeads: 3, nPos: 5 });
    const L = layoutGraph(c.nodes, { width: 900, height: 600 });
    expect(L.mode).toBe('head');
    expect([L.nLayers, L.nHeads]).toEqual([4, 3]);
    const at = (id: string) => {
      const k = c.nodes.findIndex((n) => n.node_id === id);
      return { x: L.x[k]!, y: L.y[k]! };
    };
    let below = at('input').y;
    for (let l = 0; l < 4; l++) {
      expect(at(`a${l}.h0`).y).toBeLessThan(below); // smaller y = higher on screen
      expect(at(`m${l}`).y).toBeLessThan(at(`a${l}.h0`).y);
      expect(at(`a${l}.h0`).x).toBeLessThan(at(`a${l}.h1`).x);
      expect(at(`a${l}.h1`).x).toBeLessThan(at(`a${l}.h2`).x);
      below = at(`m${l}`).y;
    }
    expect(at('logits').y).toBeLessThan(below);
    for (let k = 0; k < c.nodes.length; k++) {
      expect(L.x[k]).toBeGreaterThanOrEqual(L.plot.left);
      expect(L.x[k]).toBeLessThanOrEqual(L.plot.right);
      expect(L.y[k]).toBeGreaterThanOrEqual(L.plot.top);
      expect(L.y[k]).toBeLessThanOrEqual(L.plot.bottom);
    }
  });

  it('puts position-resolved nodes in their token column', () => {
    const c = syntheticCircuit({ nLayers: 2, nHeads: 3, nPos: 4, positionResolved: true });
    const L = layoutGraph(c.nodes, { width: 800, height: 500, labels: ['a', 'b', 'c', 'd'] });
    expect(L.mode).toBe('position');
    expect(L.cols.map((col) => col.label)).toEqual(['"a"', '"b"', '"c"', '"d"']);
    const colW = (L.plot.right - L.plot.left) / 4;
    c.nodes.forEach((n, k) => {
      if (n.ctx_idx === null || n.ctx_idx === undefined) return;
      expect(L.x[k]).toBeGreaterThan(L.plot.left + n.ctx_idx * colW);
      expect(L.x[k]).toBeLessThan(L.plot.left + (n.ctx_idx + 1) * colW);
    });
  });

  it('reads the head from the id when the field is missing', () => {
    expect(headOf({ node_id: 'a3.h11', layer: 3, ctx_idx: null, feature_type: 'attention' })).toBe(11);
    expect(headOf({ node_id: 'a3.h11', layer: 3, ctx_idx: null, feature_type: 'attention', head: 2 })).toBe(2);
  });

  it('hit-tests nodes and edges', () => {
    const c = syntheticCircuit({ nLayers: 2, nHeads: 2, nPos: 3 });
    const g = buildGraph(c);
    const L = layoutGraph(c.nodes, { width: 700, height: 400 });
    for (let k = 0; k < c.nodes.length; k++) expect(nearestNode(L, L.x[k]!, L.y[k]!, 3)).toBe(k);
    expect(nearestNode(L, -100, -100, 5)).toBe(-1);
    const e = 7;
    const [ax, ay, bx, by] = edgeEnds(L, g, e);
    const kept = Int32Array.from(c.links.map((_, i) => i));
    expect(segmentDist2((ax! + bx!) / 2, (ay! + by!) / 2, ax!, ay!, bx!, by!)).toBeCloseTo(0, 9);
    const hit = nearestEdge(L, g, kept, (ax! + bx!) / 2, (ay! + by!) / 2, 2);
    // Another edge may overlap exactly; whichever is returned passes through the point.
    const [hx, hy, hx2, hy2] = edgeEnds(L, g, hit);
    expect(segmentDist2((ax! + bx!) / 2, (ay! + by!) / 2, hx!, hy!, hx2!, hy2!)).toBeLessThan(4);
  });

  it('segmentDist2 matches dense sampling of the segment', () => {
    const cases = [[0, 0, 0, 0, 10, 0], [5, 5, 0, 0, 10, 0], [-3, 4, 0, 0, 10, 0], [12, 1, 0, 0, 10, 0], [1, 1, 2, 2, 2, 2]];
    for (const [px, py, ax, ay, bx, by] of cases) {
      let best = Infinity;
      for (let i = 0; i <= 10000; i++) {
        const t = i / 10000;
        best = Math.min(best, (ax! + t * (bx! - ax!) - px!) ** 2 + (ay! + t * (by! - ay!) - py!) ** 2);
      }
      expect(segmentDist2(px!, py!, ax!, ay!, bx!, by!)).toBeCloseTo(best, 6);
    }
  });
});
