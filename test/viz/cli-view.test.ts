// Tests of src/cli/commands/view.ts (kept under test/viz/, which this module's owner may edit).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { DEFAULT_VIEW_PORT, parsePort, register, runView } from '../../src/cli/commands/view.ts';
import { makeRunsFixture, type RunsFixture } from './helpers/runs-fixture.ts';

describe('relp view', () => {
  let fx: RunsFixture;
  beforeAll(async () => (fx = await makeRunsFixture()));
  afterAll(() => fx.cleanup());

  it('registers `view [RUNS_DIR] --port --host` with loopback and port 7878 defaults', () => {
    const program = new Command();
    register(program);
    const view = program.commands.find((c) => c.name() === 'view')!;
    expect(view).toBeDefined();
    expect(view.registeredArguments[0]!.name()).toBe('RUNS_DIR');
    expect(view.registeredArguments[0]!.defaultValue).toBe('runs');
    const opts = Object.fromEntries(view.options.map((o) => [o.long, o.defaultValue]));
    expect(opts).toEqual({ '--port': DEFAULT_VIEW_PORT, '--host': '127.0.0.1', '--json': false });
    expect(DEFAULT_VIEW_PORT).toBe(7878);
  });

  it('parses ports strictly', () => {
    expect(parsePort('0')).toBe(0);
    expect(parsePort('65535')).toBe(65535);
    for (const bad of ['-1', '65536', '80.5', 'abc', '', '1e3']) expect(() => parsePort(bad), bad).toThrow(/expected an integer 0–65535/);
  });

  it('prints only the URL on stdout, and the server answers there', async () => {
    let out = '';
    const sink = new Writable({ write: (chunk, _enc, cb) => ((out += chunk), cb()) });
    const viewer = await runView(fx.runsDir, { port: 0, host: '127.0.0.1' }, sink);
    try {
      expect(out).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\n$/);
      const res = await fetch(`${out.trim()}api/runs`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { runs: unknown[] }).runs.length).toBeGreaterThan(0);
    } finally {
      await viewer.close();
    }
  });

  it('fails clearly for a missing runs directory', async () => {
    await expect(runView(`${fx.base}/nope`, { port: 0, host: '127.0.0.1' }, new Writable({ write: (_c, _e, cb) => cb() }))).rejects.toThrow(/runs directory ".*nope" does not exist/);
  });
});
