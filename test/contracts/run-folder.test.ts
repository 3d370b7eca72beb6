/**
 * The refusal to write into a run folder that holds another run names only what differs, each
 * with its old and new value: readable fields (task, seed, n, corruption, model) where a file
 * records them, a shortened hash only when nothing readable explains the difference. It was one
 * 700-character line repeating both provenances and showing hashes where n was 64 vs 16.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareRunFolder, RunFolderConflictError, type RunFacts } from '../../src/contracts/run-folder.ts';
import type { Provenance } from '../../src/contracts/provenance.ts';
import { syntheticCircuit, syntheticRun } from '../../src/viz/synthetic-run.ts';
import { describeError } from '../../src/cli/errors.ts';

const base = mkdtempSync(join(tmpdir(), 'relp-run-folder-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const OLD = syntheticRun({ nLayers: 2, nHeads: 2, nPos: 4, seed: 1 });
const hash = (c: string) => c.repeat(64);

/** A folder with a run.json of `OLD` (n 1, corruption swap), optionally with other facts. */
function folder(name: string, edit: (r: typeof OLD) => void = () => {}): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  const run = structuredClone(OLD);
  run.dataset.corruption = 'swap';
  edit(run);
  writeFileSync(join(dir, 'run.json'), JSON.stringify(run));
  return dir;
}

/** The refusal `prepareRunFolder` throws for `next`. */
function refusal(dir: string, next: Partial<Provenance>, facts: RunFacts): RunFolderConflictError {
  try {
    prepareRunFolder(dir, { ...OLD.provenance, ...next }, { facts });
  } catch (e) {
    expect(e).toBeInstanceOf(RunFolderConflictError);
    return e as RunFolderConflictError;
  }
  throw new Error('expected a refusal');
}

describe('prepareRunFolder refusal', () => {
  const model = OLD.model.path;

  it('lists only the readable fields that differ, each with both values, and no hash', () => {
    const e = refusal(folder('readable'), { dataset_sha256: hash('a') }, { n: 16, corruption: 'abc', model });
    expect(e.differences).toEqual(['n 1 → 16, corruption swap → abc']);
    expect(e.message).not.toMatch(/sha256|[0-9a-f]{12}/);
    expect(e.message).not.toMatch(/--/); // the library names no CLI flag
    expect(e.message.length).toBeLessThan(250);
  });

  it('names task and seed when they differ', () => {
    const e = refusal(folder('seed'), { seed: 7, dataset_sha256: hash('a') }, { n: 1, corruption: 'swap', model });
    expect(e.differences).toEqual(['seed 1 → 7']);
  });

  it('shows a shortened prompts hash only when no readable field differs (an edited dataset file)', () => {
    const e = refusal(folder('edited'), { dataset_sha256: hash('a') }, { n: 1, corruption: 'swap', model });
    expect(e.differences).toEqual([`prompts sha256 ${OLD.provenance.dataset_sha256.slice(0, 12)} → aaaaaaaaaaaa`]);
  });

  it('names another model by its folder, and by hash only when the folder is the same', () => {
    const moved = refusal(folder('model'), { model_sha256: hash('b') }, { n: 1, corruption: 'swap', model: '/models/other' });
    expect(moved.differences).toEqual([`model ${model} → /models/other`]);
    const retrained = refusal(folder('model'), { model_sha256: hash('b') }, { n: 1, corruption: 'swap', model });
    expect(retrained.differences).toEqual(['model sha256 000000000000 → bbbbbbbbbbbb']);
  });

  it('says each difference once across the folder\'s files, even when one file records fewer facts', () => {
    const dir = folder('two-files');
    // A circuit.json of the same run that does not record the corruption (as before it did).
    const circuit = syntheticCircuit({ nLayers: 2, nHeads: 2, nPos: 4, seed: 1 });
    writeFileSync(join(dir, 'circuit.json'), JSON.stringify({ ...circuit, metadata: { ...circuit.metadata, model, prompts: 1 } }));
    const e = refusal(dir, { dataset_sha256: hash('a') }, { n: 1, corruption: 'abc', model });
    expect(e.differences).toEqual(['corruption swap → abc']);
  });

  it('accepts the same run, and with force removes the other run', () => {
    const dir = folder('same');
    prepareRunFolder(dir, OLD.provenance, { facts: { n: 99 } }); // facts only describe; the hashes decide
    prepareRunFolder(dir, { ...OLD.provenance, dataset_sha256: hash('a') }, { force: true });
    expect(existsSync(join(dir, 'run.json'))).toBe(false);
  });

  it('the CLI words it with its flags: one error line and one hint', () => {
    const e = refusal(folder('cli'), { dataset_sha256: hash('a') }, { n: 16, corruption: 'abc', model });
    const { error, hint } = describeError(e);
    expect(error).toBe(`--out ${join(base, 'cli')} holds another run: n 1 → 16, corruption swap → abc`);
    expect(hint).toBe('pass --force to start a new run there (removes its run.json, circuit.json, faithfulness.json, progress.json), or use another --out');
  });
});
