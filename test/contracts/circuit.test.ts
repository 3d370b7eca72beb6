import { describe, expect, it } from 'vitest';
import { syntheticCircuit, syntheticFaithfulness, syntheticProvenance } from '../../src/viz/synthetic-run.ts';
import { parseCircuitFile } from '../../src/contracts/circuit.ts';
import { parseFaithfulnessFile } from '../../src/contracts/faithfulness.ts';

const fresh = () => JSON.parse(JSON.stringify(syntheticCircuit({ nLayers: 2, nHeads: 2, nPos: 4, seed: 1 })));

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a validation error');
}

describe('parseCircuitFile', () => {
  it('accepts a well-formed circuit', () => {
    const c = parseCircuitFile(fresh());
    expect(c.nodes.map((n) => n.node_id)).toEqual(['input', 'a0.h0', 'a0.h1', 'm0', 'a1.h0', 'a1.h1', 'm1', 'logits']);
    expect(c.provenance?.task).toBe('ioi');
  });

  it('names a link whose endpoint is not a node', () => {
    const c = fresh();
    c.links[5].target = 'a3.h9';
    expect(message(() => parseCircuitFile(c))).toBe('circuit.json: links[5].target "a3.h9" is not a node id');
  });

  it('rejects duplicate node ids, unknown kinds, bad positions and bad q/k/v inputs', () => {
    let c = fresh();
    c.nodes[2].node_id = 'a0.h0';
    expect(message(() => parseCircuitFile(c))).toBe('circuit.json: nodes[2].node_id "a0.h0" is used by an earlier node');
    c = fresh();
    c.nodes[1].feature_type = 'neuron';
    expect(message(() => parseCircuitFile(c))).toBe('circuit.json: nodes[1].feature_type is a string ("neuron"), expected "embedding" or "attention" or "mlp" or "logits"');
    c = fresh();
    c.nodes[1].ctx_idx = -1;
    expect(message(() => parseCircuitFile(c))).toMatch(/^circuit\.json: nodes\[1\]\.ctx_idx is a number \(-1\)/);
    c = fresh();
    c.links[0].target_input = 'o';
    expect(message(() => parseCircuitFile(c))).toBe('circuit.json: links[0].target_input is a string ("o"), expected "q" or "k" or "v"');
  });

  it('requires finite weights and numeric per-method scores', () => {
    const c = fresh();
    c.links[3].scores['atp*'] = 'big';
    expect(message(() => parseCircuitFile(c))).toBe('circuit.json: links[3].scores["atp*"] is a string, expected a finite number');
    const d = fresh();
    d.links[1].weight = null;
    expect(message(() => parseCircuitFile(d))).toBe('circuit.json: links[1].weight is null, expected a finite number');
  });

  it('reads a file without a version (relp 0.1.0, or another attribution-graph writer) with unknown provenance', () => {
    const { version: _v, written_by: _w, provenance: _p, ...legacy } = fresh();
    const c = parseCircuitFile(legacy);
    expect(c.version).toBeNull();
    expect(c.provenance).toBeNull();
    expect(c.links).toHaveLength(legacy.links.length);
  });

  it('refuses an unknown version, naming it', () => {
    const c = { ...fresh(), version: 5, written_by: 'relp 3.0.0' };
    expect(message(() => parseCircuitFile(c, 'r/circuit.json'))).toBe('r/circuit.json: version is 5: this circuit file was written by relp 3.0.0 and this relp reads version 1 (upgrade relp to read it)');
  });

  it('names a missing field', () => {
    const c = fresh();
    delete c.links;
    expect(message(() => parseCircuitFile(c))).toBe('circuit.json: links is missing (expected an array)');
  });
});

describe('parseFaithfulnessFile', () => {
  const o = { nLayers: 2, nHeads: 2, nPos: 4 };
  it('reads version 1 and the legacy forms (one curve, or an array), always as a list of curves', () => {
    const curves = syntheticFaithfulness(o, 100);
    const v1 = { version: 1, written_by: 'relp 0.1.0', provenance: syntheticProvenance(o), curves };
    expect(parseFaithfulnessFile(v1).curves).toHaveLength(3);
    expect(parseFaithfulnessFile(curves).curves).toHaveLength(3);
    expect(parseFaithfulnessFile(curves[0]).curves).toHaveLength(1);
    expect(parseFaithfulnessFile(curves).provenance).toBeNull();
  });

  it('names the bad point, a missing field and an unknown version', () => {
    const curves = syntheticFaithfulness(o, 100);
    (curves[1]!.curve[2] as any).recovered = 'n/a';
    expect(message(() => parseFaithfulnessFile(curves))).toBe('faithfulness.json: [1].curve[2].recovered is a string, expected a finite number');
    expect(message(() => parseFaithfulnessFile({ curve: [] }))).toBe('faithfulness.json: method is missing (expected a string)');
    expect(message(() => parseFaithfulnessFile({ version: 2, curves: [] }))).toBe('faithfulness.json: version is 2: this faithfulness file was written by a newer relp and this relp reads version 1 (upgrade relp to read it)');
    expect(message(() => parseFaithfulnessFile({ version: 1, written_by: 'x', curves: [] }))).toBe('faithfulness.json: provenance is missing (expected an object)');
  });
});
