/**
 * `relp circuit --workers 2`: exact edges and EAP-IG scored on worker threads equal the unsharded
 * library scores on the same prompts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCircuitCommand, type CircuitCommandOptions } from '../../src/cli/commands/circuit.ts';
import { attributeEdges, exactEdgeScores } from '../../src/circuits/attribute.ts';
import { buildGraph, edgeIndex } from '../../src/circuits/graph.ts';
import type { CircuitFile } from '../../src/contracts/circuit.ts';
import { ioiSameLength } from '../../src/tasks/dataset.ts';
import { loadModelWithTokenizer } from '../../src/hooks/load-model.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import { makeTmpModelDir } from '../helpers/tmp-model.ts';

describe('relp circuit on worker threads', () => {
  const tmp = makeTmpModelDir({ withTokenizer: true, seed: 5 });
  const out = mkdtempSync(join(tmpdir(), 'relp-circuit-shards-'));
  afterAll(() => {
    tmp.cleanup();
    rmSync(out, { recursive: true, force: true });
  });

  it('exact and eap-ig scores from 2 threads equal exactEdgeScores / attributeEdges (1e-5)', async () => {
    const opts: CircuitCommandOptions = {
      model: tmp.dir, task: 'ioi', n: 4, seed: 1, corruption: 'abc', method: ['exact', 'eap-ig'], rules: 'relp', igSteps: 2,
      edges: 1000, selection: 'topn', ablation: 'corrupt', curvePoints: 3, reference: 'none', out, progress: false,
      workers: 2, shardEdges: 10, shardPrompts: 2,
    };
    await runCircuitCommand(opts);
    const circuit = JSON.parse(readFileSync(join(out, 'circuit.json'), 'utf8')) as CircuitFile;
    const { model, tokenizer } = await loadModelWithTokenizer(tmp.dir);
    const data = toPatchingData(ioiSameLength(tokenizer, 4, 1, 'abc'));
    const graph = buildGraph(model.cfg.nLayers, model.cfg.nHeads);
    const exact = exactEdgeScores(model, graph, data);
    const ig = attributeEdges(model, graph, data, { method: 'eap-ig', igSteps: 2 });
    model.dispose();
    expect(circuit.links.length).toBeGreaterThan(10);
    for (const l of circuit.links) {
      const e = edgeIndex(graph, l.source, l.target_input ? `${l.target}<${l.target_input}>` : l.target);
      expect(Math.abs(l.scores!.exact! - exact.scores[e])).toBeLessThan(1e-5);
      expect(Math.abs(l.scores!['eap-ig']! - ig.scores[e])).toBeLessThan(1e-5);
    }
  });
});
