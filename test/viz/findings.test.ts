/**
 * Newcomer findings in the viewer, reproduced in headless Chromium (screenshots in test/artifacts/viz/):
 * - every heatmap had its own unlabelled colour scale, so panels could not be compared by colour;
 * - a run without a circuit showed a "circuit" link that gave a 404;
 * - AtP* magnitudes stood beside signed scores with no note;
 * - under KL noising the table showed correlations of rounding noise (every gradient estimate is 0);
 * - corrupt and old-version files must give named errors (truncated JSON, a missing field, a wrong
 *   type, an unknown version), and a version-1 file is still shown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { startViewer, type RunningViewer } from '../../src/viz/server.ts';
import { syntheticRun } from '../../src/viz/synthetic-run.ts';
import { artifact, launchChromium, watchedPage } from './helpers/browser.ts';
import { makeRunsFixture, type RunsFixture } from './helpers/runs-fixture.ts';

describe('viewer findings in headless Chromium', () => {
  let fx: RunsFixture;
  let v: RunningViewer;
  let browser: Browser;
  const o = { nLayers: 2, nHeads: 2, nPos: 5, seed: 11 };
  const write = async (id: string, text: string) => {
    await fs.mkdir(path.join(fx.runsDir, id), { recursive: true });
    await fs.writeFile(path.join(fx.runsDir, id, 'run.json'), text);
  };
  beforeAll(async () => {
    fx = await makeRunsFixture();
    const good = () => JSON.parse(JSON.stringify(syntheticRun(o)));
    await write('run-only', JSON.stringify(good()));
    await write('truncated', JSON.stringify(good()).slice(0, 300));
    await write('missing-field', JSON.stringify({ ...good(), labels: undefined }));
    await write('wrong-type', JSON.stringify({ ...good(), metric: { ...good().metric, clean: 'high' } }));
    await write('unknown-version', JSON.stringify({ ...good(), version: 9, written_by: 'relp 9.1.0' }));
    const { written_by: _w, provenance: _p, ...v1 } = good();
    await write('version-1', JSON.stringify({ ...v1, version: 1 }));
    await write('kl-noising', JSON.stringify({ ...good(), metric: { name: 'neg_kl', clean: 0, corrupt: -1.2, direction: 'noising' } }));
    v = await startViewer({ runsDir: fx.runsDir, port: 0 });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await v?.close();
    await fx?.cleanup();
  });

  it('draws the heatmaps of one component on one labelled colour scale: the largest |score| over its methods', async () => {
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${v.url}runs/ioi-small`);
    await page.waitForSelector('#comp-resid_pre[data-rendered]');
    const run = fx.runs['ioi-small']!;
    for (const comp of ['resid_pre', 'z']) {
      await page.locator(`#comp-${comp}`).scrollIntoViewIfNeeded();
      await page.waitForSelector(`#comp-${comp}[data-rendered]`);
      // From the file: max |value| over every method's tensor of the component; signed → symmetric.
      const all = Object.values(run.scores).flatMap((c) => ((c[comp]?.values ?? []) as unknown[]).flat(3) as (number | null)[]).filter((x): x is number => typeof x === 'number');
      const absMax = Math.max(...all.map(Math.abs));
      const plots = page.locator(`#comp-${comp} .heatmap-plot`);
      expect(await plots.count()).toBe(Object.values(run.scores).filter((c) => c[comp]).length);
      const ranges = await plots.evaluateAll((els) => els.map((e) => [Number((e as HTMLElement).dataset.zmin), Number((e as HTMLElement).dataset.zmax)]));
      for (const [zmin, zmax] of ranges) {
        expect(zmax).toBeCloseTo(absMax, 12);
        expect(zmin).toBeCloseTo(all.some((x) => x < 0) ? -absMax : 0, 12);
      }
      // Plotly drew what the page asked for, and every colour bar carries the label.
      const drawn = await plots.evaluateAll((els) => els.map((e) => {
        const d = (e as unknown as { data: { zmin: number; zmax: number; colorbar: { title: { text: string } } }[] }).data[0]!;
        return { zmin: d.zmin, zmax: d.zmax, title: d.colorbar.title.text };
      }));
      for (const d of drawn) {
        expect(d.zmax).toBeCloseTo(absMax, 12);
        expect(d.title).toBe(`${run.metric.name} (shared)`);
      }
    }
    await page.locator('#comp-resid_pre').screenshot({ path: artifact('findings-shared-scale.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('marks atp* as magnitudes next to the signed methods', async () => {
    const { page } = await watchedPage(browser);
    await page.goto(`${v.url}runs/ioi-small`);
    await page.waitForSelector('#comp-resid_pre[data-rendered]');
    expect(await page.locator('.corr-note[data-method="atp*"]').textContent()).toMatch(/atp\* scores are magnitudes/);
    const titles = await page.locator('#comp-resid_pre .heatmap-plot .gtitle').allTextContents();
    expect(titles).toContain('atp* (magnitude) · resid_pre');
    // Its scatter trace is drawn and correlated against |activation|, as the table's column is.
    const legend = await page.locator('#comp-resid_pre .scatter-plot .legendtext').allTextContents();
    expect(legend.some((t) => /^atp\* vs \|activation\|: r=0\.\d+, ρ=/.test(t)), legend.join(' | ')).toBe(true);
    await page.locator('#correlations').screenshot({ path: artifact('findings-atp-star-note.png') });
    await page.context().close();
  });

  it('shows no correlation, and why, where the metric has no gradient at the base run (KL noising)', async () => {
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${v.url}runs/kl-noising`);
    await page.waitForSelector('#comp-resid_pre[data-rendered]');
    const cells = await page.locator('#corr-table tbody td').allTextContents();
    expect(cells.length).toBeGreaterThan(0);
    for (const c of cells) expect(c).toBe('– (no gradient)');
    const note = await page.locator('.corr-note[data-kind="vanishing-gradient"]').textContent();
    expect(note).toMatch(/^note: – \(no gradient\) atp, atp\*, relp \(every component\): no correlation: the metric's gradient vanishes at the base run/);
    const legend = await page.locator('#comp-resid_pre .scatter-plot .legendtext').allTextContents();
    expect(legend).toContain('relp: no correlation');
    await page.locator('#correlations').screenshot({ path: artifact('findings-kl-noising.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('links the circuit page only when the run has a circuit.json', async () => {
    const { page } = await watchedPage(browser);
    await page.goto(`${v.url}runs/run-only`);
    await page.waitForSelector('body[data-ready]');
    expect(await page.locator('header.topbar a', { hasText: 'circuit' }).count()).toBe(0);
    const circuitRes = await fetch(`${v.url}runs/run-only/circuit`);
    expect(circuitRes.status).toBe(404); // there is nothing to link to
    await page.screenshot({ path: artifact('findings-run-only.png') });
    await page.goto(`${v.url}runs/ioi-small`);
    await page.waitForSelector('body[data-ready]');
    const link = page.locator('header.topbar a', { hasText: 'circuit' });
    expect(await link.getAttribute('href')).toBe('/runs/ioi-small/circuit');
    expect((await fetch(`${v.url}runs/ioi-small/circuit`)).status).toBe(200);
    await page.context().close();
  });

  it.each([
    ['truncated', /^truncated\/run\.json is not valid JSON: it ends early at line 1, column 301 \(truncated or partially written\?\)$/],
    ['missing-field', /^missing-field\/run\.json: labels is missing \(expected an array\)$/],
    ['wrong-type', /^wrong-type\/run\.json: metric\.clean is a string, expected a finite number$/],
    ['unknown-version', /^unknown-version\/run\.json: version is 9: this run file was written by relp 9\.1\.0 and this relp reads versions 1, 2 \(upgrade relp to read it\)$/],
  ])('names the problem of a %s run.json on its page and in the runs list', async (id, expected) => {
    const { page } = await watchedPage(browser);
    const res = await page.goto(`${v.url}runs/${id}`);
    expect(res!.status()).toBe(422);
    expect(await page.locator('#error .error-message').textContent()).toMatch(expected);
    await page.screenshot({ path: artifact(`findings-${id}.png`) });
    const list = (await (await fetch(`${v.url}api/runs`)).json()) as { runs: { id: string; error: string | null }[] };
    expect(list.runs.find((r) => r.id === id)!.error).toMatch(expected);
    await page.context().close();
  });

  it('shows a version-1 run (written before provenance), saying the weights hash was not recorded', async () => {
    const { page, errors } = await watchedPage(browser);
    const res = await page.goto(`${v.url}runs/version-1`);
    expect(res!.status()).toBe(200);
    await page.waitForSelector('#comp-resid_pre[data-rendered]');
    expect(await page.locator('#run-meta').textContent()).toContain('not recorded (older run file)');
    await page.screenshot({ path: artifact('findings-version-1.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
