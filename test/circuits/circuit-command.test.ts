import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { register, runCircuitCommand, type CircuitCommandOptions } from '../../src/cli/commands/circuit.ts';
import { validateCircuitFile, validateFaithfulnessFile } from '../../src/viz/validate-circuit.ts';
import { loadModelWithTokenizer } from '../../src/hooks/load-model.ts';
import { makeTmpModelDir } from '../helpers/tmp-model.ts';

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
    const circuit = validateCircuitFile(JSON.parse(readFileSync(join(out, 'circuit.json'), 'utf8')));
    const curves = validateFaithfulnessFile(JSON.parse(readFileSync(join(out, 'faithfulness.json'), 'utf8')));
    expect(circuit.metadata.methods).toEqual(['eap', 'eap-relp', 'eap-ig']);
    expect(circuit.metadata.method).toBe('eap');
    expect(circuit.links.length).toBe(summary.circuit_edges);
    expect(circuit.links.length).toBeLessThanOrEqual(20);
    for (const l of circuit.links) expect(Object.keys(l.scores!)).toEqual(['eap', 'eap-relp', 'eap-ig']);
    expect(curves.map((c) => c.method)).toEqual(['eap', 'eap-relp', 'eap-ig']);
    // `full` and `empty` are the measured clean and corrupt logit differences (corrupt ablation):
    // recompute them independently with the plain model forward on the same prompts.
    const { model, tokenizer } = await loadModelWithTokenizer(tmp.dir);
    const { ioiPairs } = await import('../../src/cli/commands/circuit.ts');
    const pairs = ioiPairs(tokenizer, 6, 1, 'abc');
    const ld = (key: 'cleanIds' | 'corruptIds') => {
      const lg = model.forward(pairs.map((p) => p[key]));
      const a = lg.arraySync() as number[][][];
      lg.dispose();
      return a.reduce((s, row, b) => s + row.at(-1)![pairs[b].answerId] - row.at(-1)![pairs[b].wrongId], 0) / a.length;
    };
    for (const c of curves) {
      expect(Math.abs(c.full! - ld('cleanIds'))).toBeLessThan(1e-4);
      expect(Math.abs(c.empty! - ld('corruptIds'))).toBeLessThan(1e-4);
      expect(c.auc).toBeGreaterThan(-10);
    }
    model.dispose();
  });

  it('rejects bad arguments with specific messages', async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    register(program);
    await expect(program.parseAsync(['node', 'relp', 'circuit', '--method', 'eap,foo', '--out', out])).rejects.toThrow(/unknown circuit method "foo"/);
    await expect(runCircuitCommand({ ...base, dataset: 'x.jsonl' })).rejects.toThrow(/exactly one of --task ioi or --dataset/);
    await expect(runCircuitCommand({ ...base, threshold: 1 })).rejects.toThrow(/either --edges or --threshold/);
    await expect(runCircuitCommand({ ...base, task: 'sva' })).rejects.toThrow(/unknown task "sva"/);
    await expect(runCircuitCommand({ ...base, method: ['eap-relp'], rules: 'bogus' })).rejects.toThrow(/unknown rule preset "bogus"/);
  });
});
