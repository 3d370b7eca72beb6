import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { promises as fs, statSync } from 'node:fs';
import { RunStore } from '../../src/viz/run-store.ts';
import { makeRunsFixture, SECRET, type RunsFixture } from './helpers/runs-fixture.ts';

describe('RunStore', () => {
  let fx: RunsFixture;
  let store: RunStore;
  beforeAll(async () => {
    fx = await makeRunsFixture();
    store = new RunStore(fx.runsDir);
  });
  afterAll(() => fx.cleanup());

  it('lists runs, newest first, with errors instead of throwing, and never lists escapes', async () => {
    const list = await store.list();
    const ids = list.map((r) => r.id);
    // Dated runs in date order (newest first); the others are dated by file mtime (now), so come first.
    expect(ids.filter((id) => ['gpt2-small', 'ioi-small', 'pos-circuit'].includes(id))).toEqual(['gpt2-small', 'ioi-small', 'pos-circuit']);
    expect(ids.indexOf('broken')).toBeLessThan(ids.indexOf('gpt2-small'));
    expect(new Set(ids)).toEqual(new Set(['gpt2-small', 'ioi-small', 'pos-circuit', 'circuit-only', 'broken', 'bad-shape']));
    expect(JSON.stringify(list)).not.toContain(SECRET);
    const broken = list.find((r) => r.id === 'broken')!;
    expect(broken.error).toMatch(/broken\/run\.json is not valid JSON: it ends early/);
    const badShape = list.find((r) => r.id === 'bad-shape')!;
    expect(badShape.error).toMatch(/scores\.relp\.resid_pre\.values\[1\] has 4 entries, expected 5/);
  });

  it('summarises model, task, methods, date and total size', async () => {
    const s = await store.summary('ioi-small');
    const dir = path.join(fx.runsDir, 'ioi-small');
    const size = ['run.json', 'circuit.json', 'faithfulness.json'].reduce((a, f) => a + statSync(path.join(dir, f)).size, 0);
    expect(s).toMatchObject({ model: 'synthetic-gpt2.safetensors', task: 'ioi', methods: ['activation', 'atp', 'atp*', 'relp'], date: '2025-02-01T10:00:00.000Z', size, hasRun: true, hasCircuit: true, hasFaithfulness: true, error: null });
    const c = await store.summary('circuit-only');
    expect(c).toMatchObject({ model: 'synthetic-gpt2', task: 'ioi', hasRun: false, hasCircuit: true, methods: ['atp', 'atp*', 'relp'] });
  });

  it('re-reads a file after it changes on disk (cache keyed by mtime and size)', async () => {
    const dir = path.join(fx.runsDir, 'ioi-small');
    const first = await store.loadRun('ioi-small');
    const again = await store.loadRun('ioi-small');
    expect(again).toBe(first);
    const run = JSON.parse(first.raw.toString());
    run.dataset.kind = 'greater-than';
    await fs.writeFile(path.join(dir, 'run.json'), JSON.stringify(run));
    const later = new Date(Date.now() + 5000);
    await fs.utimes(path.join(dir, 'run.json'), later, later);
    expect((await store.loadRun('ioi-small')).data.dataset.kind).toBe('greater-than');
  });

  it('loads faithfulness as a list of curves', async () => {
    const f = await store.loadFaithfulness('gpt2-small');
    expect(f.data.curves.map((c) => c.method)).toEqual(['atp', 'atp*', 'relp']);
  });
});
