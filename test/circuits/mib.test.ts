/**
 * MIB interchange (issue 21): graph size, CPR / CMD definitions, the toMib / fromMib round trip and
 * the named refusals of fromMib and the MIB file contract.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { buildGraph, edgeIndex } from '../../src/circuits/graph.ts';
import { evaluateCircuits, faithfulnessCurve, MIB_FRACTIONS, mibAreas, mibSizes } from '../../src/circuits/faithfulness.ts';
import { fromMib, toMib } from '../../src/circuits/mib.ts';
import { pruneDangling, selectTopN } from '../../src/circuits/prune.ts';
import { parseMibFile, readMibFile, writeMibFile, type MibFile } from '../../src/contracts/mib.ts';
import { configFromHF } from '../../src/models/config.ts';
import { graphTopology } from '../../src/models/topology.ts';
import { mulberry32 } from '../../src/models/state-dict.ts';
import { cfg, tinyData, tinyModel } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'relp-mib-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error message of `f`. */
function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('MIB graph size', () => {
  it("GPT-2 small's shape gives MIB's 158 nodes and 32,491 edges, in the graph and in the file", () => {
    // The topology of a GPT-2 config (no weights): 12 layers × 12 heads, sequential blocks, MHA.
    const gpt2 = configFromHF({ model_type: 'gpt2', n_layer: 12, n_head: 12, n_embd: 768, n_positions: 1024, vocab_size: 50257 });
    const topo = graphTopology(gpt2);
    const g = buildGraph(topo.nLayers, topo.nHeads, topo);
    expect(g.nodes.length).toBe(158); // input + 12 × (12 heads + MLP) + logits
    expect(g.nEdges).toBe(32491);
    const file = toMib(g, new Float32Array(g.nEdges), new Uint8Array(g.nEdges), gpt2);
    expect(Object.keys(file.nodes).length).toBe(158);
    expect(Object.keys(file.edges).length).toBe(32491);
    expect(file.cfg).toEqual({ n_layers: 12, n_heads: 12, parallel_attn_mlp: false, d_model: 768 });
    // Names as MIB writes them: q/k/v suffix into heads only; MLPs read their own layer's heads.
    for (const e of ['input->a0.h0<q>', 'input->a0.h0<k>', 'a0.h0->a1.h5<v>', 'a0.h0->m0', 'm11->logits', 'input->logits']) expect(file.edges[e], e).toBeDefined();
    for (const e of ['a0.h0->a0.h1<q>', 'input->a0.h0', 'm0->m0', 'a0.h0->m0<q>']) expect(file.edges[e], e).toBeUndefined();
  });
});

describe('CPR and CMD', () => {
  it('match a hand computation (trapezoids over the fractions, divided by 0.999)', () => {
    // p      = 0.001 0.002 0.005 0.01 0.02 0.05 0.1  0.2  0.5  1
    // f      = 0     0.2   0.4   0.4  0.6  0.8  1.0  1.2  1.0  1.0
    // widths =   0.001 0.003 0.005 0.01 0.03 0.05 0.1  0.3  0.5
    // ∫f:    0.001·0.1 + 0.003·0.3 + 0.005·0.4 + 0.01·0.5 + 0.03·0.7 + 0.05·0.9 + 0.1·1.1 + 0.3·1.1 + 0.5·1.0
    //      = 0.0001 + 0.0009 + 0.002 + 0.005 + 0.021 + 0.045 + 0.11 + 0.33 + 0.5 = 1.014 → CPR = 1.014 / 0.999
    // |1−f|  = 1     0.8   0.6   0.6  0.4  0.2  0    0.2  0    0
    // ∫|1−f|: 0.001·0.9 + 0.003·0.7 + 0.005·0.6 + 0.01·0.5 + 0.03·0.3 + 0.05·0.1 + 0.1·0.1 + 0.3·0.1 + 0.5·0
    //      = 0.0009 + 0.0021 + 0.003 + 0.005 + 0.009 + 0.005 + 0.01 + 0.03 + 0 = 0.065 → CMD = 0.065 / 0.999
    const { cpr, cmd } = mibAreas([0, 0.2, 0.4, 0.4, 0.6, 0.8, 1.0, 1.2, 1.0, 1.0]);
    expect(cpr).toBeCloseTo(1.014 / 0.999, 12);
    expect(cmd).toBeCloseTo(0.065 / 0.999, 12);
    // The normalisation: a perfect circuit gives CPR 1 and CMD 0, the empty one CPR 0 and CMD 1.
    expect(mibAreas(MIB_FRACTIONS.map(() => 1))).toEqual({ cpr: 1, cmd: 0 });
    const zero = mibAreas(MIB_FRACTIONS.map(() => 0));
    expect(zero.cpr).toBe(0);
    expect(zero.cmd).toBeCloseTo(1, 12);
    expect(message(() => mibAreas([1, 1]))).toMatch(/need 10 faithfulness values/);
  });

  it("circuit sizes are MIB's floor(p · edges), at least 1", () => {
    expect(mibSizes(32491)).toEqual([32, 64, 162, 324, 649, 1624, 3249, 6498, 16245, 32491]);
    expect(mibSizes(46)).toEqual([1, 1, 1, 1, 1, 2, 4, 9, 23, 46]); // the 2 × 2 test graph
  });

  it('a curve with mib: f at each MIB size equals the top-n circuit evaluated directly', () => {
    const { model } = tinyModel();
    const graph = buildGraph(cfg.nLayers, cfg.nHeads);
    const data = tinyData(3, 5, 17);
    const r = mulberry32(4);
    const scores = Float32Array.from({ length: graph.nEdges }, () => r() - 0.5);
    const before = tf.memory().numTensors;
    const c = faithfulnessCurve(model, graph, data, scores, { sizes: [3, 30], mib: true });
    expect(tf.memory().numTensors).toBe(before);
    const sizes = mibSizes(graph.nEdges);
    expect(c.mib!.edges).toEqual(sizes);
    // Independent: the pruned top-n circuits of MIB's sizes (all but 100%) in one evaluation.
    const ev = evaluateCircuits(model, graph, data, sizes.slice(0, -1).map((n) => pruneDangling(graph, selectTopN(graph, scores, n))));
    const want = [...ev.recovered, 1];
    c.mib!.recovered.forEach((f, i) => expect(Math.abs(f - want[i]!), `fraction ${MIB_FRACTIONS[i]}`).toBeLessThan(1e-6));
    expect(c.mib!.cpr).toBeCloseTo(mibAreas(want).cpr, 6);
    expect(c.mib!.cmd).toBeCloseTo(mibAreas(want).cmd, 6);
    // The asked sizes stay on the curve, and the curve is sorted by size.
    expect(c.curve.map((p) => p.edges)).toEqual([0, 1, 2, 3, 4, 9, 23, 30, 46]);
    model.dispose();
  });
});

describe('toMib / fromMib', () => {
  const graph = buildGraph(2, 2);
  const shape = { dModel: 16 };
  const r = mulberry32(11);
  const scores = Float32Array.from({ length: graph.nEdges }, () => r() - 0.5);
  const mask = pruneDangling(graph, selectTopN(graph, scores, 12));
  const file = (): MibFile => JSON.parse(JSON.stringify(toMib(graph, scores, mask, shape)));

  it('round-trips scores and in_graph edges through a file; nodes are in_graph when an edge is', () => {
    const path = writeMibFile(join(dir, 'c.json'), file());
    const back = fromMib(readMibFile(path), graph, shape, path);
    expect(back.missing).toBe(0);
    expect(Array.from(back.scores)).toEqual(Array.from(scores));
    expect(Array.from(back.inCircuit)).toEqual(Array.from(mask));
    const f = file();
    const touched = new Set(Object.entries(f.edges).filter(([, e]) => e.in_graph).flatMap(([n]) => n.replace(/<[qkv]>$/, '').split('->')));
    for (const [id, n] of Object.entries(f.nodes)) expect(n.in_graph, id).toBe(touched.has(id) || id === 'logits');
    expect(touched.size).toBeGreaterThan(2);
  });

  it('reads a file that lists only some edges (the others: score 0, not in the circuit)', () => {
    const f = file();
    delete f.edges['input->a0.h0<q>'];
    const back = fromMib(f, graph, shape);
    expect(back.missing).toBe(1);
    expect(back.scores[edgeIndex(graph, 'input', 'a0.h0<q>')]).toBe(0);
  });

  it('names the field of every refusal', () => {
    const bad = (edit: (f: MibFile) => void) => {
      const f = file();
      edit(f);
      return message(() => fromMib(f, graph, shape, 'c.json'));
    };
    expect(bad((f) => (f.cfg.n_layers = 3))).toBe('c.json: cfg.n_layers is 3, but the model has 2');
    expect(bad((f) => (f.cfg.n_heads = 4))).toBe('c.json: cfg.n_heads is 4, but the model has 2');
    expect(bad((f) => (f.cfg.d_model = 768))).toBe('c.json: cfg.d_model is 768, but the model has 16');
    expect(bad((f) => (f.cfg.parallel_attn_mlp = true))).toBe('c.json: cfg.parallel_attn_mlp is true, but the model has false');
    expect(bad((f) => (f.nodes['a2.h0'] = { in_graph: true }))).toMatch(/^c\.json: nodes\["a2\.h0"\] names an unknown node "a2\.h0"/);
    expect(bad((f) => (f.edges['a0.h7->m1'] = { score: 1, in_graph: true }))).toMatch(/^c\.json: edges\["a0\.h7->m1"\] names an unknown node "a0\.h7"/);
    expect(bad((f) => (f.edges['m1->a0.h0<q>'] = { score: 1, in_graph: true }))).toBe('c.json: edges["m1->a0.h0<q>"] is not an edge of this model (m1 is not upstream of a0.h0<q>)');
    expect(bad((f) => (f.edges['input->a0.h0'] = { score: 1, in_graph: true }))).toBe('c.json: edges["input->a0.h0"] is not an edge of this model (an edge into head a0.h0 names its input <q>, <k> or <v>)');
    expect(bad((f) => (f.edges['input->m0<q>'] = { score: 1, in_graph: true }))).toBe('c.json: edges["input->m0<q>"] is not an edge of this model (an edge into m0 has no <q|k|v> suffix)');
    expect(bad((f) => (f.edges['input m0'] = { score: 1, in_graph: true }))).toMatch(/^c\.json: edges\["input m0"\] is not an edge name/);
    expect(bad((f) => (f.nodes.m0 = { in_graph: true, neurons: [true] } as MibFile['nodes'][string]))).toMatch(/^c\.json: nodes\["m0"\]\.neurons is a neuron-level circuit/);
    // Parallel blocks: MLP l does not read layer l's heads, in both conventions.
    const par = buildGraph(2, 2, { mlpReadsSameLayerHeads: false });
    const pf = toMib(par, new Float32Array(par.nEdges), new Uint8Array(par.nEdges), shape);
    expect(pf.cfg.parallel_attn_mlp).toBe(true);
    expect(pf.edges['a0.h0->m0']).toBeUndefined();
    expect(message(() => fromMib(file(), par, shape, 'c.json'))).toBe('c.json: cfg.parallel_attn_mlp is false, but the model has true');
  });

  it('refuses grouped-query graphs in the grouped convention in both directions, and takes the per-head one', () => {
    const gqa = buildGraph(2, 4, { nKvHeads: 2 });
    const want = /^MIB circuit files need the per-query-head graph convention, and this model has 2 kv heads for 4 query heads: add --gqa per-head$/;
    expect(message(() => toMib(gqa, new Float32Array(gqa.nEdges), new Uint8Array(gqa.nEdges), shape))).toMatch(want);
    expect(message(() => fromMib(file(), gqa, shape))).toMatch(want);
    // Per query head, the graph has MIB's names and counts: the same as an MHA graph of 4 heads.
    const perHead = buildGraph(2, 4, { nKvHeads: 2, gqa: 'per-head' });
    const mha = buildGraph(2, 4, {});
    expect(perHead.nEdges).toBe(mha.nEdges);
    const scores = Float32Array.from({ length: perHead.nEdges }, (_, i) => (i % 7) - 3);
    const mask = Uint8Array.from({ length: perHead.nEdges }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const f = toMib(perHead, scores, mask, shape);
    expect(Object.keys(f.edges)).toEqual(Object.keys(toMib(mha, scores, mask, shape).edges));
    expect(f.edges['input->a1.h3<k>']).toBeDefined();
    const back = fromMib(f, perHead, shape);
    expect(Array.from(back.scores)).toEqual(Array.from(scores));
    expect(Array.from(back.inCircuit)).toEqual(Array.from(mask));
  });

  it('the file contract names malformed JSON and wrong types', () => {
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{"cfg": {"n_layers": 2,, "n_heads": 2}}');
    expect(message(() => readMibFile(path))).toBe(`${path} is not valid JSON: unexpected "," at line 1, column 24`);
    const f = file() as unknown as { edges: Record<string, { score: unknown }> };
    f.edges['input->m0']!.score = 'high';
    expect(message(() => parseMibFile(f, 'c.json'))).toBe('c.json: edges["input->m0"].score is a string, expected a finite number');
    expect(message(() => parseMibFile([], 'c.json'))).toMatch(/^c\.json is an array, expected a MIB circuit object/);
    const { cfg: _cfg, ...noCfg } = file();
    expect(message(() => parseMibFile(noCfg, 'c.json'))).toMatch(/^c\.json: cfg is missing/);
  });
});
