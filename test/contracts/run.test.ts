import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContractError } from '../../src/contracts/errors.ts';
import { RUN_VERSION, parseRunFile, readRunFile, writeRunFile } from '../../src/contracts/run.ts';
import { datasetHash } from '../../src/contracts/provenance.ts';
import { flattenTensor } from '../../src/contracts/score-tensor.ts';
import { syntheticRun } from '../../src/viz/synthetic-run.ts';

const fresh = () => JSON.parse(JSON.stringify(syntheticRun({ nLayers: 2, nHeads: 3, nPos: 4, seed: 1 })));

function message(mutate: (r: any) => void): string {
  const r = fresh();
  mutate(r);
  try {
    parseRunFile(r, 'run.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ContractError);
    return (e as Error).message;
  }
  throw new Error('expected a validation error');
}

/** The version-1 form of a run (as relp 0.1.0 wrote it): no writer, no provenance. */
function asV1(r: any): any {
  const { written_by: _w, provenance: _p, ...rest } = r;
  return { ...rest, version: 1 };
}

describe('parseRunFile', () => {
  it('accepts a well-formed run', () => {
    const v = parseRunFile(fresh());
    expect(Object.keys(v.scores)).toEqual(['activation', 'atp', 'atp*', 'relp']);
    expect(v.labels).toHaveLength(4);
    expect(v.version).toBe(RUN_VERSION);
  });

  it('names the exact entry of a ragged score array', () => {
    expect(message((r) => r.scores.relp.resid_pre.values[1].pop())).toBe('run.json: scores.relp.resid_pre.values[1] has 3 entries, expected 4 (shape [2, 4])');
  });

  it('quotes method names that are not identifiers', () => {
    expect(message((r) => (r.scores['atp*'].z.values[0][2] = 'x'))).toBe('run.json: scores["atp*"].z.values[0][2] is a string ("x"), expected a finite number or null');
  });

  it('accepts null cells (missing) and flattens them to NaN, row-major', () => {
    const r = fresh();
    r.scores.relp.z.values[1][0] = null;
    const v = parseRunFile(r);
    const flat = flattenTensor(v.scores.relp!.z!);
    expect(flat).toHaveLength(6);
    expect(Number.isNaN(flat[3])).toBe(true);
    expect(flat[5]).toBe(r.scores.relp.z.values[1][2]);
    expect(flat[1]).toBe(r.scores.relp.z.values[0][1]);
  });

  it('requires the position axis to match the labels, and one shape per component', () => {
    expect(message((r) => r.labels.pop())).toBe('run.json: scores.activation.resid_pre.shape has 4 positions but labels has 3 tokens');
    expect(message((r) => (r.scores.relp.z = { axes: ['layer', 'head'], shape: [2, 1], values: [[1], [2]] }))).toMatch(/^run\.json: scores\.relp\.z\.shape is \[2, 1\] \(layer, head\) but activation's z is \[2, 3\]/);
  });

  it('rejects unknown axis layouts and bad shapes', () => {
    expect(message((r) => (r.scores.atp.z.axes = ['head', 'layer']))).toMatch(/^run\.json: scores\.atp\.z\.axes is \["head","layer"\], expected one of/);
    expect(message((r) => (r.scores.atp.z.shape = [2, 0]))).toMatch(/^run\.json: scores\.atp\.z\.shape\[1\] is a number \(0\)/);
  });

  it('names a missing field and a wrong type', () => {
    expect(message((r) => delete r.scores)).toBe('run.json: scores is missing (expected an object)');
    expect(message((r) => delete r.provenance)).toBe('run.json: provenance is missing (expected an object)');
    expect(message((r) => (r.labels[2] = 7))).toBe('run.json: labels[2] is a number, expected a string');
    expect(message((r) => (r.metric.clean = 'high'))).toBe('run.json: metric.clean is a string, expected a finite number');
    expect(message((r) => (r.dataset.pairs = {}))).toBe('run.json: dataset.pairs is an object, expected an array');
    expect(message((r) => (r.provenance.dataset_sha256 = 'abc'))).toMatch(/^run\.json: provenance\.dataset_sha256 is a string \("abc"\), expected a sha256 hex digest/);
  });

  it('checks a 3-D tensor to the last index', () => {
    expect(message((r) => (r.scores.relp.z_pos.values[1][2][3] = true))).toBe('run.json: scores.relp.z_pos.values[1][2][3] is a boolean, expected a finite number or null');
  });

  it('refuses an unknown version naming it and the relp that wrote it', () => {
    expect(message((r) => ((r.version = 3), (r.written_by = 'relp 0.4.0')))).toBe('run.json: version is 3: this run file was written by relp 0.4.0 and this relp reads versions 1, 2 (upgrade relp to read it)');
    expect(message((r) => (r.version = 'two'))).toBe('run.json: version is "two" (written by relp (synthetic run)): not a run file version this relp knows (it reads versions 1, 2)');
    expect(message((r) => delete r.version)).toBe('run.json: version is missing: not a relp run file');
  });

  it('reads a version-1 file (relp 0.1.0), upgrading it with provenance from its prompts and an unknown model hash', () => {
    const v1 = asV1(fresh());
    const up = parseRunFile(v1, 'old/run.json');
    expect(up.version).toBe(RUN_VERSION);
    expect(up.written_by).toBe('relp (run-file version 1)');
    expect(up.provenance).toEqual({ task: 'ioi', seed: 1, dataset_sha256: datasetHash(v1.dataset.pairs), model_sha256: null });
    expect(up.scores).toEqual(v1.scores);
    // The old format's problems are still named.
    v1.scores.relp.resid_pre.values[0][1] = 'x';
    expect(() => parseRunFile(v1, 'old/run.json')).toThrow('old/run.json: scores.relp.resid_pre.values[0][1] is a string ("x"), expected a finite number or null');
  });

  it('refuses a non-object file', () => {
    expect(() => parseRunFile([1, 2], 'a/run.json')).toThrow('a/run.json is an array, expected a run-file object');
  });
});

describe('readRunFile / writeRunFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'relp-contract-run-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips through the one writer, stamping version, writer and date', () => {
    const { version: _v, written_by: _w, created: _c, ...content } = fresh();
    const path = writeRunFile(dir, content);
    const raw = JSON.parse(readFileSync(path, 'utf8'));
    expect(raw.version).toBe(RUN_VERSION);
    expect(raw.written_by).toMatch(/^relp \d+\.\d+\.\d+/);
    expect(Number.isNaN(Date.parse(raw.created))).toBe(false);
    expect(readRunFile(dir).scores).toEqual(content.scores);
  });

  it('refuses to write a file it would refuse to read', () => {
    const bad = fresh();
    bad.scores.relp.resid_pre.values[0].pop();
    expect(() => writeRunFile(join(dir, 'bad'), bad)).toThrow(/\(before writing\): scores\.relp\.resid_pre\.values\[0\] has 3 entries/);
  });

  it('names a truncated file with where it ends, and a missing one', () => {
    const text = JSON.stringify(fresh(), null, 1);
    writeFileSync(join(dir, 'cut.json'), text.slice(0, 200));
    expect(() => readRunFile(join(dir, 'cut.json'))).toThrow(/cut\.json is not valid JSON: it ends early at line \d+, column \d+ \(truncated or partially written\?\)/);
    expect(() => readRunFile(join(dir, 'nope'))).toThrow(`${join(dir, 'nope', 'run.json')} does not exist`);
  });
});
