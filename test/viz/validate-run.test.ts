import { describe, expect, it } from 'vitest';
import { ViewerDataError } from '../../src/viz/errors.ts';
import { syntheticRun } from '../../src/viz/synthetic-run.ts';
import { flattenTensor, validateRunFile } from '../../src/viz/validate-run.ts';

const fresh = () => JSON.parse(JSON.stringify(syntheticRun({ nLayers: 2, nHeads: 3, nPos: 4, seed: 1 })));

function message(mutate: (r: any) => void): string {
  const r = fresh();
  mutate(r);
  try {
    validateRunFile(r, 'run.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ViewerDataError);
    expect((e as ViewerDataError).status).toBe(422);
    return (e as Error).message;
  }
  throw new Error('expected a validation error');
}

describe('validateRunFile', () => {
  it('accepts a well-formed run', () => {
    const r = fresh();
    const v = validateRunFile(r);
    expect(Object.keys(v.scores)).toEqual(['activation', 'atp', 'atp*', 'relp']);
    expect(v.labels).toHaveLength(4);
  });

  it('names the exact entry of a ragged score array', () => {
    expect(message((r) => r.scores.relp.resid_pre.values[1].pop())).toBe('run.json: scores.relp.resid_pre.values[1] has 3 entries, expected 4 (shape [2, 4])');
  });

  it('quotes method names that are not identifiers', () => {
    expect(message((r) => (r.scores['atp*'].z.values[0][2] = 'x'))).toBe('run.json: scores["atp*"].z.values[0][2] is a string, expected a finite number or null');
  });

  it('accepts null cells (missing) and flattens them to NaN', () => {
    const r = fresh();
    r.scores.relp.z.values[1][0] = null;
    const v = validateRunFile(r);
    const flat = flattenTensor(v.scores.relp!.z!);
    expect(flat).toHaveLength(6);
    expect(Number.isNaN(flat[3])).toBe(true);
    // Row-major order, checked against direct indexing.
    expect(flat[5]).toBe(r.scores.relp.z.values[1][2]);
    expect(flat[1]).toBe(r.scores.relp.z.values[0][1]);
  });

  it('requires the position axis to match the labels', () => {
    expect(message((r) => r.labels.pop())).toMatch(/^run\.json: scores\.activation\.resid_pre\.shape has 4 positions but labels has 3 tokens$/);
  });

  it('rejects unknown axis layouts and bad shapes', () => {
    expect(message((r) => (r.scores.atp.z.axes = ['head', 'layer']))).toMatch(/scores\.atp\.z\.axes is \["head","layer"\], expected one of/);
    expect(message((r) => (r.scores.atp.z.shape = [2, 0]))).toMatch(/scores\.atp\.z\.shape is \[2,0\], expected 2 positive integers/);
  });

  it('checks version, scores and labels types', () => {
    expect(message((r) => (r.version = 2))).toBe('run.json: version is 2, expected 1');
    expect(message((r) => delete r.scores)).toMatch(/^run\.json: scores is a undefined, expected/);
    expect(message((r) => (r.labels[2] = 7))).toBe('run.json: labels[2] is a number, expected a token string');
    expect(message((r) => (r.metric.clean = 'high'))).toBe('run.json: metric.clean is a string, expected a number');
    expect(message((r) => (r.dataset.pairs = {}))).toBe('run.json: dataset.pairs is an object, expected an array');
  });

  it('checks a 3-D tensor to the last index', () => {
    expect(message((r) => (r.scores.relp.z_pos.values[1][2][3] = true))).toBe('run.json: scores.relp.z_pos.values[1][2][3] is a boolean, expected a finite number or null');
  });
});
