/**
 * The published JSON Schemas (docs/schemas) are generated from the zod schemas and current, and
 * they accept what relp writes and reject what its readers reject — checked with an independent
 * JSON Schema validator (ajv), so other tools can rely on them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Ajv2020 from 'ajv/dist/2020.js';
import { SCHEMA_DIR, schemaTexts } from '../../scripts/write-schemas.ts';
import { syntheticCircuit, syntheticFaithfulness, syntheticProvenance, syntheticRun } from '../../src/viz/synthetic-run.ts';
import { buildGraph } from '../../src/circuits/graph.ts';
import { toMib } from '../../src/circuits/mib.ts';

describe('docs/schemas', () => {
  it('match the zod schemas (else: npm run schemas)', () => {
    for (const [name, text] of Object.entries(schemaTexts())) expect(readFileSync(join(SCHEMA_DIR, name), 'utf8'), name).toBe(text);
  });

  it('are draft 2020-12 schemas that accept current files and reject a missing field or a wrong type', async () => {
    const ajv = new Ajv2020.default({ strict: false });
    const o = { nLayers: 2, nHeads: 2, nPos: 4, seed: 1 };
    const load = (n: string) => JSON.parse(readFileSync(join(SCHEMA_DIR, n), 'utf8')) as object;
    const cases: [string, unknown][] = [
      ['run.schema.json', syntheticRun(o)],
      ['circuit.schema.json', syntheticCircuit(o)],
      ['faithfulness.schema.json', { version: 1, written_by: 'relp 0.1.0', provenance: syntheticProvenance(o), curves: syntheticFaithfulness(o, 50) }],
    ];
    for (const [name, file] of cases) {
      const validate = ajv.compile(load(name));
      expect(validate(JSON.parse(JSON.stringify(file))), `${name}: ${JSON.stringify(validate.errors)}`).toBe(true);
      const missing = JSON.parse(JSON.stringify(file));
      delete missing.provenance;
      expect(validate(missing), `${name} without provenance`).toBe(false);
      const wrong = { ...JSON.parse(JSON.stringify(file)), version: 'one' };
      expect(validate(wrong), `${name} with a string version`).toBe(false);
    }
  });

  it('the MIB circuit schema accepts what --mib-out writes and rejects a missing cfg or a string score', () => {
    const ajv = new Ajv2020.default({ strict: false });
    const validate = ajv.compile(JSON.parse(readFileSync(join(SCHEMA_DIR, 'mib-circuit.schema.json'), 'utf8')) as object);
    const g = buildGraph(2, 2);
    const file = JSON.parse(JSON.stringify(toMib(g, new Float32Array(g.nEdges).fill(0.5), new Uint8Array(g.nEdges).fill(1), { dModel: 16 })));
    expect(validate(file), JSON.stringify(validate.errors)).toBe(true);
    const { cfg: _cfg, ...noCfg } = file;
    expect(validate(noCfg)).toBe(false);
    file.edges['input->m0'].score = 'high';
    expect(validate(file)).toBe(false);
  });
});
