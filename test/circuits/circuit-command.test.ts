import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { formatCircuitSummary, register, runCircuitCommand, type CircuitCommandOptions } from '../../src/cli/commands/circuit.ts';
import { activationPatch } from '../../src/patching/activation-patching.ts';
import { toPatchingData } from '../../src/patching/data.ts';
import { readCircuitFile } from '../../src/contracts/circuit.ts';
import { readFaithfulnessFile } from '../../src/contracts/faithfulness.ts';
import { ioiSameLength } from '../../src/tasks/dataset.ts';
import { loadModelWithTokenizer } from '../../src/hooks/load-model.ts';
import { makeTmpModelDir } from '../helpers/tmp-model.ts';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import { buildGraph, edgeIndex } from '../../src/circuits/graph.ts';
import { naiveGraphRun } from './naive-graph.ts';

describe('relp circuit', () => {
  const tmp = makeTmpModelDir({ withTokenizer: true, seed: 3 });
  const out = mkdtempSync(join(tmpdir(), 'relp-circuit-'));
  afterAll(() => {
    tmp.cleanup();
    rmSync(out, { recursive: true, force: true });
  });
  const base: CircuitCommandOptions = {
    model: tmp.dir, task: 'ioi', n: 6, seed: 1, corruption: 'abc', method: ['eap', 'eap-relp', 'eap-ig'], rules: 'relp', igSteps: 2,
    edges: 20, selection: 'topn', ablation: 'corrupt', curvePoints: 5, reference: 'patching', out, progress: false,
  };

  it('writes circuit.json and faithfulness.json the viewer accepts, with measured full/empty', async () => {
    const before = tf.memory().numTensors;
    const summary = await runCircuitCommand(base);
    expect(tf.memory().numTensors).toBe(before);
    const circuit = readCircuitFile(out);
    const { curves, provenance } = readFaithfulnessFile(out);
    expect(provenance).toEqual(circuit.provenance);
    expect(circuit.provenance).toMatchObject({ task: 'ioi', seed: 1 });
    expect(circuit.metadata.methods).toEqual(['eap', 'eap-relp', 'eap-ig']);
    expect(circuit.metadata.method).toBe('eap');
    expect(circuit.links.length).toBe(summary.circuit_edges);
    expect(circuit.links.length).toBeLessThanOrEqual(20);
    for (const l of circuit.links) expect(Object.keys(l.scores!)).toEqual(['eap', 'eap-relp', 'eap-ig']);
    expect(curves.map((c) => c.method)).toEqual(['eap', 'eap-relp', 'eap-ig']);
    // `full` and `empty` are the measured clean and corrupt logit differences (corrupt ablation):
    // recompute them independently with the plain model forward on the same prompts.
    const { model, tokenizer } = await loadModelWithTokenizer(tmp.dir);
    // The circuit command draws its prompts with the one IOI selection (the same as `relp patch`).
    const pairs = ioiSameLength(tokenizer, 6, 1, 'abc');
    const ld = (key: 'cleanIds' | 'corruptIds') => {
      const lg = model.forward(pairs.map((p) => p[key]));
      const a = lg.arraySync() as number[][][];
      lg.dispose();
      return a.reduce((s, row, b) => s + row.at(-1)![pairs[b].answerId] - row.at(-1)![pairs[b].wrongId], 0) / a.length;
    };
    for (const c of curves) {
      expect(Math.abs(c.full! - ld('cleanIds'))).toBeLessThan(1e-4);
      expect(Math.abs(c.empty! - ld('corruptIds'))).toBeLessThan(1e-4);
      // The curve spans fraction 0 → 1 with the measured endpoints (0 edges: 0; all: 1), so its
      // trapezoid AUC — recomputed here — lies between the smallest and largest recovered value.
      const pts = c.curve;
      expect([pts[0]!.fraction_edges, pts[0]!.recovered, pts.at(-1)!.fraction_edges, pts.at(-1)!.recovered]).toEqual([0, 0, 1, 1]);
      let auc = 0;
      for (let i = 1; i < pts.length; i++) auc += ((pts[i]!.fraction_edges! - pts[i - 1]!.fraction_edges!) * (pts[i]!.recovered + pts[i - 1]!.recovered)) / 2;
      expect(Math.abs(c.auc! - auc)).toBeLessThan(1e-9);
      const rec = pts.map((p) => p.recovered);
      expect(c.auc!).toBeGreaterThanOrEqual(Math.min(...rec) - 1e-12);
      expect(c.auc!).toBeLessThanOrEqual(Math.max(...rec) + 1e-12);
    }
    // The circuit written to circuit.json recovers what the summary says: rebuild its edge mask from
    // the links and run it through the independent float64 edge-by-edge reference (corrupt ablation).
    const ck = await loadCheckpoint(tmp.dir);
    const cfg = ck.config;
    const graph = buildGraph(cfg.nLayers, cfg.nHeads);
    const mask = new Uint8Array(graph.nEdges);
    for (const l of circuit.links) mask[edgeIndex(graph, l.source, l.target_input ? `${l.target}<${l.target_input}>` : l.target)] = 1;
    const naiveLd = (keep: (e: number) => boolean) =>
      pairs.reduce((s, p) => {
        const ablated = naiveGraphRun(cfg, ck.stateDict, graph, p.corruptIds, () => true).outputs;
        const { lastLogits } = naiveGraphRun(cfg, ck.stateDict, graph, p.cleanIds, keep, ablated);
        return s + lastLogits[p.answerId]! - lastLogits[p.wrongId]!;
      }, 0) / pairs.length;
    const full = naiveLd(() => true);
    const empty = naiveLd(() => false);
    const recovered = (naiveLd((e) => mask[e] === 1) - empty) / (full - empty);
    expect(Math.abs(summary.circuit_recovered - recovered)).toBeLessThan(1e-3);
    model.dispose();
  });

  it('the summary says what each number is: the selection, where each curve first reaches 80% and the sizes it measured, the reference heads by name', async () => {
    const sumOut = join(out, 'summary');
    const summary = await runCircuitCommand({ ...base, method: ['eap', 'eap-relp'], out: sumOut });
    const text = formatCircuitSummary(summary);
    const links = readCircuitFile(sumOut).links.length;
    // The circuit line: how many edges the top-20 selection kept once dangling ones were dropped.
    expect(text.split('\n')[0]).toMatch(new RegExp(`^circuit: ${links} of \\d+ edges \\(the top 20 by \\|eap score\\|, then ${20 - links} dangling edges dropped\\) on 6 prompts \\(task ioi, seed 1\\); recovers -?\\d\\.\\d{3} of the metric`));
    // "80% at n", read off the written curves: the first measured size at or above 80% and the
    // measured size before it; one number only when no size lies between them.
    const { curves } = readFaithfulnessFile(sumOut);
    for (const c of curves) {
      const i = c.curve.findIndex((p) => p.recovered >= 0.8);
      expect(i).toBeGreaterThan(0);
      const [prev, first] = [c.curve[i - 1]!.edges, c.curve[i]!.edges];
      const cell = prev + 1 === first ? String(first) : `${prev + 1}–${first}`;
      const row = text.split('\n').find((l) => l.startsWith(`${c.method} `))!;
      expect(row.trim().split(/\s+/)[4], row).toBe(cell);
      expect([summary.methods[c.method]!.edges_for_80, summary.methods[c.method]!.edges_below_80]).toEqual([first, prev]);
      // The legend lists exactly the sizes the curve measured (its ends, 0 and every edge, are defined).
      expect(text).toContain(`The curve measures n = ${c.curve.slice(1, -1).map((p) => p.edges).join(', ')} only.`);
    }
    // The reference heads by name: recompute them from activation patching of z on the same prompts
    // (|effect| ≥ 10% of the largest).
    const { model, tokenizer } = await loadModelWithTokenizer(tmp.dir);
    const z = (await activationPatch(model, toPatchingData(ioiSameLength(tokenizer, 6, 1, 'abc')), { components: 'z' })).scores.z!.values as number[][];
    model.dispose();
    const max = Math.max(...z.flat().map(Math.abs));
    const want = z.flatMap((row, l) => row.map((v, h) => ({ id: `a${l}.h${h}`, a: Math.abs(v) }))).filter((c) => c.a >= 0.1 * max).map((c) => c.id);
    const line = text.split('\n').find((l) => l.startsWith('reference heads'))!;
    const named = /: ((?:a\d+\.h\d+(?:, )?)+);/.exec(line)?.[1]?.split(', ');
    expect(new Set(named)).toEqual(new Set(want));
    expect(line).toMatch(new RegExp(`they recover ${summary.reference_recovered!.toFixed(3)}$`));
  });

  it('rejects bad arguments with specific messages', async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    register(program);
    await expect(program.parseAsync(['node', 'relp', 'circuit', '--method', 'eap,foo', '--out', out])).rejects.toThrow(/unknown circuit method "foo"/);
    await expect(runCircuitCommand({ ...base, dataset: 'x.jsonl' })).rejects.toThrow(/either --task or --dataset, not both/);
    await expect(runCircuitCommand({ ...base, threshold: 1 })).rejects.toThrow(/either --edges or --threshold/);
    await expect(runCircuitCommand({ ...base, task: 'sva' })).rejects.toThrow(/unknown task "sva"/);
    await expect(runCircuitCommand({ ...base, method: ['eap-relp'], rules: 'bogus' })).rejects.toThrow(/unknown rule preset "bogus"/);
  });
});
