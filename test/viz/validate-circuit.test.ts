import { describe, expect, it } from 'vitest';
import { syntheticCircuit, syntheticFaithfulness } from '../../src/viz/synthetic-run.ts';
import { validateCircuitFile, validateFaithfulnessFile } from '../../src/viz/validate-circuit.ts';

const fresh = () => JSON.parse(JSON.stringify(syntheticCircuit({ nLayers: 2, nHeads: 2, nPos: 4, seed: 1 })));

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a validation error');
}

describe('validateCircuitFile', () => {
  it('accepts a well-formed circuit', () => {
    const c = validateCircuitFile(fresh());
    expect(c.nodes.map((n) => n.node_id)).toEqual(['input', 'a0.h0', 'a0.h1', 'm0', 'a1.h0', 'a1.h1', 'm1', 'logits']);
  });

  it('names a link whose endpoint is not a node', () => {
    const c = fresh();
    c.links[5].target = 'a3.h9';
    expect(message(() => validateCircuitFile(c))).toBe('circuit.json: links[5].target "a3.h9" is not a node id');
  });

  it('rejects duplicate node ids, unknown kinds, bad positions and bad q/k/v inputs', () => {
    let c = fresh();
    c.nodes[2].node_id = 'a0.h0';
    expect(message(() => validateCircuitFile(c))).toBe('circuit.json: nodes[2].node_id "a0.h0" is used by an earlier node');
    c = fresh();
    c.nodes[1].feature_type = 'neuron';
    expect(message(() => validateCircuitFile(c))).toMatch(/^circuit\.json: nodes\[1\]\.feature_type is "neuron", expected one of/);
    c = fresh();
    c.nodes[1].ctx_idx = -1;
    expect(message(() => validateCircuitFile(c))).toMatch(/nodes\[1\]\.ctx_idx is -1, expected a position/);
    c = fresh();
    c.links[0].target_input = 'o';
    expect(message(() => validateCircuitFile(c))).toBe('circuit.json: links[0].target_input is "o", expected "q", "k", "v" or null');
  });

  it('requires finite weights and numeric per-method scores', () => {
    const c = fresh();
    c.links[3].scores['atp*'] = 'big';
    expect(message(() => validateCircuitFile(c))).toBe('circuit.json: links[3].scores["atp*"] is a string, expected a finite number or null');
    const d = fresh();
    d.links[1].weight = null;
    expect(message(() => validateCircuitFile(d))).toBe('circuit.json: links[1].weight is null, expected a finite number');
  });
});

describe('validateFaithfulnessFile', () => {
  it('accepts one curve or an array, always returning an array', () => {
    const curves = syntheticFaithfulness({ nLayers: 2, nHeads: 2, nPos: 4 }, 100);
    expect(validateFaithfulnessFile(curves)).toHaveLength(3);
    expect(validateFaithfulnessFile(curves[0])).toHaveLength(1);
  });

  it('names the bad point', () => {
    const curves = syntheticFaithfulness({ nLayers: 2, nHeads: 2, nPos: 4 }, 100);
    (curves[1]!.curve[2] as any).recovered = 'n/a';
    expect(message(() => validateFaithfulnessFile(curves))).toBe('faithfulness.json: [1].curve[2].recovered is a string, expected a finite number');
    expect(message(() => validateFaithfulnessFile({ curve: [] }))).toBe('faithfulness.json: method is a undefined, expected a method name');
  });
});
