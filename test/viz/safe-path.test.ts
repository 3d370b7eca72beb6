import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { isInside, isValidRunId, resolveRunFile } from '../../src/viz/safe-path.ts';
import { makeRunsFixture, type RunsFixture } from './helpers/runs-fixture.ts';

describe('isValidRunId', () => {
  it('accepts plain names', () => {
    for (const id of ['ioi-1', 'run_2025.01.01', 'A', 'x'.repeat(128), '0']) expect(isValidRunId(id), id).toBe(true);
  });
  it('rejects dots, separators, encodings, absolute paths and overlong ids', () => {
    const bad = ['.', '..', '.hidden', '../x', '..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'a/b', 'a\\b', '..\\..\\x', '/etc/passwd', 'C:\\x', '', 'x'.repeat(129), 'a b', 'a\0b', 'ü'];
    for (const id of bad) expect(isValidRunId(id), JSON.stringify(id)).toBe(false);
    expect(isValidRunId(undefined)).toBe(false);
  });
});

describe('isInside', () => {
  it('is true for the root and below, false for siblings with a common prefix', () => {
    expect(isInside('/a/runs', '/a/runs')).toBe(true);
    expect(isInside('/a/runs', '/a/runs/x/run.json')).toBe(true);
    expect(isInside('/a/runs', '/a/runs2/x')).toBe(false);
    expect(isInside('/a/runs', '/a')).toBe(false);
  });
});

describe('resolveRunFile', () => {
  let fx: RunsFixture;
  beforeAll(async () => (fx = await makeRunsFixture()));
  afterAll(() => fx.cleanup());

  it('resolves a run file inside the runs directory', async () => {
    const real = await resolveRunFile(fx.runsDir, 'ioi-small', 'run.json');
    expect(real).toBe(await fs.realpath(path.join(fx.runsDir, 'ioi-small', 'run.json')));
  });

  it('refuses symlinks that lead outside (directory or file) as not found', async () => {
    await expect(resolveRunFile(fx.runsDir, 'escape', 'run.json')).rejects.toMatchObject({ status: 404 });
    await expect(resolveRunFile(fx.runsDir, 'leak', 'run.json')).rejects.toMatchObject({ status: 404 });
  });

  it('refuses invalid ids and other file names', async () => {
    await expect(resolveRunFile(fx.runsDir, '..', 'run.json')).rejects.toMatchObject({ status: 404 });
    await expect(resolveRunFile(fx.runsDir, 'ioi-small', 'notes.txt' as 'run.json')).rejects.toMatchObject({ status: 404 });
  });

  it('reports a missing file as 404 and a missing runs directory as 500', async () => {
    await expect(resolveRunFile(fx.runsDir, 'circuit-only', 'run.json')).rejects.toMatchObject({ status: 404, message: 'run circuit-only has no run.json' });
    await expect(resolveRunFile(path.join(fx.base, 'nope'), 'x', 'run.json')).rejects.toMatchObject({ status: 500 });
  });
});
