import { describe, expect, it } from 'vitest';
import { buildGraph, edgeIndex } from '../../src/circuits/graph.ts';
import { circuitToJson } from '../../src/circuits/export.ts';
import { parseCircuitFile } from '../../src/contracts/circuit.ts';

const provenance = { task: 'ioi', seed: 0, dataset_sha256: 'a'.repeat(64), model_sha256: 'b'.repeat(64) };

describe('circuit export', () => {
  it('writes circuit edges with per-method scores and node totals in the attribution-graph style', () => {
    const g = buildGraph(2, 2);
    const a = new Float32Array(g.nEdges);
    const b = new Float32Array(g.nEdges);
    const e1 = edgeIndex(g, 'input', 'a0.h1<k>');
    const e2 = edgeIndex(g, 'a0.h1', 'logits');
    const e3 = edgeIndex(g, 'input', 'm1');
    a[e1] = 2; a[e2] = -1; a[e3] = 0.25;
    b[e1] = 1; b[e2] = 3;
    const mask = new Uint8Array(g.nEdges);
    mask[e1] = mask[e2] = 1;
    const j = circuitToJson({ graph: g, mask, scores: { eap: a, 'eap-ig': b }, model: 'm', task: 'ioi', provenance, pruningThreshold: 0.5 });
    parseCircuitFile(JSON.parse(JSON.stringify({ ...j, version: 1, written_by: 'test' })));
    expect(j.provenance).toEqual(provenance);
    expect(j.metadata).toMatchObject({ model: 'm', task: 'ioi', method: 'eap', methods: ['eap', 'eap-ig'] });
    expect(j.links).toEqual([
      { source: 'input', target: 'a0.h1', target_input: 'k', weight: 2, scores: { eap: 2, 'eap-ig': 1 } },
      { source: 'a0.h1', target: 'logits', target_input: null, weight: -1, scores: { eap: -1, 'eap-ig': 3 } },
    ]);
    expect(j.nodes.map((n) => n.node_id)).toEqual(['input', 'a0.h1', 'logits']);
    const head = j.nodes[1];
    expect(head).toMatchObject({ layer: 0, head: 1, feature_type: 'attention', ctx_idx: null, influence: 3, scores: { eap: 3, 'eap-ig': 4 } });
    expect(j.nodes[0].scores).toEqual({ eap: 2.25, 'eap-ig': 1 }); // all edges, not only the circuit's
    expect(j.qParams).toEqual({ pinnedIds: [], pruningThreshold: 0.5 });
    expect(() => circuitToJson({ graph: g, mask, scores: { eap: a.slice(1) }, model: 'm', task: 't', provenance })).toThrow(/scores of "eap" have/);
  });
});
