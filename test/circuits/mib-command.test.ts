/**
 * `relp circuit --mib-out FILE` and `relp circuit --from-mib FILE` (issue 21): a circuit written in
 * MIB's format and read back is the same circuit with the same CPR and CMD; bad files and
 * grouped-query models get one-line refusals that name the field.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { MIB_FILE_METHOD, formatCircuitSummary, runCircuitCommand, type CircuitCommandOptions } from '../../src/cli/commands/circuit.ts';
import { readCircuitFile } from '../../src/contracts/circuit.ts';
import { readFaithfulnessFile } from '../../src/contracts/faithfulness.ts';
import { readMibFile, type MibFile } from '../../src/contracts/mib.ts';
import { makeTmpModelDir } from '../helpers/tmp-model.ts';
import { randomPairs } from '../helpers/random-pairs.ts';
import { words, writeWordTokenizer } from '../helpers/word-tokenizer.ts';
import { runCli } from '../cli/run-cli.ts';
import { cleanupHFModels, hfModel } from './hf-models.ts';

describe('relp circuit --mib-out / --from-mib', () => {
  const tmp = makeTmpModelDir({ withTokenizer: true, seed: 3 });
  const dir = mkdtempSync(join(tmpdir(), 'relp-mib-cli-'));
  afterAll(() => {
    tmp.cleanup();
    cleanupHFModels();
    rmSync(dir, { recursive: true, force: true });
  });
  const mibPath = join(dir, 'circuit.mib.json');
  const base: CircuitCommandOptions = {
    model: tmp.dir, task: 'ioi', n: 6, seed: 1, corruption: 'abc', rules: 'relp', igSteps: 2,
    selection: 'topn', ablation: 'corrupt', curvePoints: 3, reference: 'none', out: join(dir, 'found'), progress: false,
  };
  /** The in-circuit edges of circuit.json as MIB edge names. */
  const circuitEdges = (out: string) =>
    new Set(readCircuitFile(out).links.map((l) => `${l.source}->${l.target}${l.target_input ? `<${l.target_input}>` : ''}`));

  it('a circuit written with --mib-out and read back with --from-mib: same in-graph edges, same CPR and CMD', async () => {
    const before = tf.memory().numTensors;
    // eap selects the circuit; the file carries eap-relp's scores (--mib-method).
    const found = await runCircuitCommand({ ...base, method: ['eap', 'eap-relp'], edges: 20, mibOut: mibPath, mibMethod: 'eap-relp' });
    expect(tf.memory().numTensors).toBe(before);
    expect(found.out.mib).toBe(mibPath);
    const file = readMibFile(mibPath);
    expect(Object.keys(file.edges).length).toBe(found.edges_total);
    const inGraph = new Set(Object.entries(file.edges).filter(([, e]) => e.in_graph).map(([n]) => n));
    expect(inGraph).toEqual(circuitEdges(base.out));
    expect(inGraph.size).toBe(found.circuit_edges);
    for (const l of readCircuitFile(base.out).links) expect(file.edges[`${l.source}->${l.target}${l.target_input ? `<${l.target_input}>` : ''}`]!.score).toBe(l.scores!['eap-relp']);
    // CPR / CMD in faithfulness.json and in the summary, for every method.
    const curves = readFaithfulnessFile(base.out).curves;
    for (const c of curves) {
      expect(c.mib!.fractions).toEqual([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]);
      expect([found.methods[c.method]!.cpr, found.methods[c.method]!.cmd]).toEqual([c.mib!.cpr, c.mib!.cmd]);
    }
    expect(formatCircuitSummary(found)).toMatch(/CPR, CMD \(MIB\): area under/);

    const out = join(dir, 'read');
    const read = await runCircuitCommand({ ...base, out, fromMib: mibPath });
    expect(tf.memory().numTensors).toBe(before);
    expect(circuitEdges(out)).toEqual(inGraph);
    expect(read.mib_file).toEqual({ path: mibPath, in_graph_edges: inGraph.size, missing_edges: 0 });
    expect(Math.abs(read.circuit_recovered - found.circuit_recovered)).toBeLessThan(1e-6);
    const want = found.methods['eap-relp']!;
    const got = read.methods[MIB_FILE_METHOD]!;
    expect(Math.abs(got.cpr! - want.cpr!)).toBeLessThan(1e-6);
    expect(Math.abs(got.cmd! - want.cmd!)).toBeLessThan(1e-6);
    // f at each MIB fraction, point by point (eap-relp's curve of the --method run).
    const fRead = readFaithfulnessFile(out).curves[0]!.mib!.recovered;
    curves[1]!.mib!.recovered.forEach((f, i) => expect(Math.abs(fRead[i]! - f)).toBeLessThan(1e-6));
    expect(formatCircuitSummary(read)).toMatch(new RegExp(`^circuit of ${mibPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${inGraph.size} in_graph edges`));
    console.log(`mib round trip: ${inGraph.size} edges; found: recovered ${found.circuit_recovered.toFixed(4)}, eap-relp CPR ${want.cpr!.toFixed(4)} CMD ${want.cmd!.toFixed(4)}; read: recovered ${read.circuit_recovered.toFixed(4)}, CPR ${got.cpr!.toFixed(4)} CMD ${got.cmd!.toFixed(4)}`);
  });

  it('bad files get one-line errors naming the node, edge or cfg field; bad flag combinations are refused', async () => {
    const good = JSON.parse(readFileSync(mibPath, 'utf8')) as MibFile;
    const fail = (name: string, edit: (f: MibFile) => void | string) => {
      const f = JSON.parse(JSON.stringify(good)) as MibFile;
      const text = edit(f);
      const path = join(dir, `${name}.json`);
      writeFileSync(path, typeof text === 'string' ? text : JSON.stringify(f));
      return runCircuitCommand({ ...base, out: join(dir, name), fromMib: path }).then(
        () => 'no error',
        (e: Error) => e.message.replace(path, 'FILE'),
      );
    };
    const messages = [
      await fail('unknown-node', (f) => void (f.nodes['a7.h0'] = { in_graph: false })),
      await fail('no-edge', (f) => void (f.edges['m1->a0.h0<q>'] = { score: 1, in_graph: true })),
      await fail('layers', (f) => void (f.cfg.n_layers = 12)),
      await fail('heads', (f) => void (f.cfg.n_heads = 12)),
      await fail('dmodel', (f) => void (f.cfg.d_model = 768)),
      await fail('parallel', (f) => void (f.cfg.parallel_attn_mlp = true)),
      await fail('malformed', () => '{"cfg": {"n_layers": 2}, "nodes": {'),
    ];
    expect(messages[0]).toMatch(/^FILE: nodes\["a7\.h0"\] names an unknown node "a7\.h0"/);
    expect(messages[1]).toBe('FILE: edges["m1->a0.h0<q>"] is not an edge of this model (m1 is not upstream of a0.h0<q>)');
    expect(messages[2]).toMatch(/^FILE: cfg\.n_layers is 12, but the model has \d+$/);
    expect(messages[3]).toMatch(/^FILE: cfg\.n_heads is 12, but the model has \d+$/);
    expect(messages[4]).toMatch(/^FILE: cfg\.d_model is 768, but the model has \d+$/);
    expect(messages[5]).toBe('FILE: cfg.parallel_attn_mlp is true, but the model has false');
    expect(messages[6]).toBe('FILE is not valid JSON: it ends early at line 1, column 36 (truncated or partially written?)');
    for (const m of messages) expect(m).not.toMatch(/\n/);
    await expect(runCircuitCommand({ ...base, method: ['eap'], fromMib: mibPath })).rejects.toThrow(/either --method .* or --from-mib FILE/);
    await expect(runCircuitCommand({ ...base })).rejects.toThrow(/give --method \(eap, eap-relp, eap-ig, exact\) or --from-mib FILE/);
    await expect(runCircuitCommand({ ...base, fromMib: mibPath, edges: 5 })).rejects.toThrow(/with --from-mib the circuit is the file's in_graph edges/);
    await expect(runCircuitCommand({ ...base, fromMib: mibPath, mibMethod: 'eap' })).rejects.toThrow(/--from-mib reads a circuit that is already in MIB's format/);
    await expect(runCircuitCommand({ ...base, method: ['eap'], mibOut: mibPath, mibMethod: 'eap-ig' })).rejects.toThrow(/--mib-method eap-ig is not one of --method \(eap\)/);
  });

  it('the CLI refuses --mib-out on a grouped-query model in the grouped convention with one line, and writes it per head', async () => {
    const { model, dir: modelDir } = await hfModel({ modelType: 'llama', seed: 41, std: 0.3, nHeads: 4, nKvHeads: 2, vocab: 52 });
    model.dispose();
    writeWordTokenizer(modelDir, 52);
    const data = join(dir, 'data.jsonl');
    writeFileSync(data, randomPairs(2, 5, 17, 50).map((p) => JSON.stringify({ clean: words(p.cleanIds.map((i) => i + 2)), corrupt: words(p.corruptIds.map((i) => i + 2)), answer: ' w3', wrong: ' w7' })).join('\n') + '\n');
    const r = await runCli(['circuit', '--model', modelDir, '--dataset', data, '--method', 'eap', '--no-progress', '--out', join(dir, 'gqa'), '--mib-out', join(dir, 'gqa.json')]);
    expect(r.code).not.toBe(0);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('relp: error'));
    expect(errors).toEqual(['relp: error: MIB circuit files need the per-query-head graph convention, and this model has 2 kv heads for 4 query heads: add --gqa per-head']);
    const ok = await runCli(['circuit', '--model', modelDir, '--dataset', data, '--method', 'eap', '--gqa', 'per-head', '--no-progress', '--out', join(dir, 'gqa-ph'), '--mib-out', join(dir, 'gqa-ph.json')]);
    expect(ok.code, ok.stderr).toBe(0);
    const written = JSON.parse(readFileSync(join(dir, 'gqa-ph.json'), 'utf8')) as { cfg: { n_heads: number }; edges: Record<string, unknown> };
    expect(written.cfg.n_heads).toBe(4);
    expect(written.edges['input->a0.h3<v>']).toBeDefined();
  });
});
