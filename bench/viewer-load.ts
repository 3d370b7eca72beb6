/**
 * Load time of the circuit page at GPT-2-small scale: 12 layers × 12 heads + MLPs, 15 positions,
 * 32,491 edges (the EAP-IG layout). Generates the run in a temp dir, starts the viewer, opens the
 * circuit page in headless Chromium and reports the time from navigation start until the first
 * frame is drawn (`data-ready`), plus the redraw time with all 32k edges. Target: < 2 s.
 *
 *   npx tsx bench/viewer-load.ts [--runs N]
 *
 * Prints human-readable lines on stderr and one JSON line on stdout; exits 1 when the median
 * load time misses the target.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startViewer } from '../src/viz/server.ts';
import { eapEdgeCount, writeSyntheticRun } from '../src/viz/synthetic-run.ts';

const TARGET_S = 2;
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const repeats = runsArg > 0 ? Math.max(1, Number(process.argv[runsArg + 1]) || 5) : 5;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'relp-viewer-bench-'));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const viewer = await startViewer({ runsDir: dir, port: 0 });
  try {
    const { circuit } = await writeSyntheticRun(dir, 'gpt2-small', { nLayers: 12, nHeads: 12, nPos: 15, seed: 1 });
    if (circuit.links.length !== eapEdgeCount(12, 12)) throw new Error(`expected ${eapEdgeCount(12, 12)} edges, got ${circuit.links.length}`);
    const url = `${viewer.url}runs/gpt2-small/circuit`;
    const wall: number[] = [];
    const inPage: number[] = [];
    const redraw: number[] = [];
    for (let r = 0; r < repeats; r++) {
      // A fresh context per repeat: empty HTTP cache, like a first visit.
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      const t0 = performance.now();
      await page.goto(url);
      await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
      wall.push((performance.now() - t0) / 1000);
      inPage.push(Number(await page.getAttribute('body', 'data-ready-ms')) / 1000);
      // Redraw with every edge kept.
      await page.locator('#threshold-slider').focus();
      await page.keyboard.press('Home');
      await page.waitForFunction((n) => document.querySelector('#circuit-canvas')?.getAttribute('data-drawn-edges') === String(n), circuit.links.filter((l) => l.scores!.relp !== 0).length);
      redraw.push(Number(await page.getAttribute('#circuit-canvas', 'data-draw-ms')) / 1000);
      await context.close();
    }
    const result = {
      edges: circuit.links.length,
      nodes: circuit.nodes.length,
      repeats,
      load_s_median: Number(median(inPage).toFixed(3)),
      load_s: inPage.map((x) => Number(x.toFixed(3))),
      wall_s: wall.map((x) => Number(x.toFixed(3))),
      redraw_all_edges_s_median: Number(median(redraw).toFixed(4)),
      target_s: TARGET_S,
    };
    process.stderr.write(`circuit page, ${result.edges} edges: ready in ${result.load_s_median.toFixed(2)} s (median of ${repeats}; navigation start to first frame)\n`);
    process.stderr.write(`  per run (in page): ${result.load_s.join(', ')} s; wall clock incl. goto: ${result.wall_s.join(', ')} s\n`);
    process.stderr.write(`  redraw with all ${result.edges} edges: ${(result.redraw_all_edges_s_median * 1000).toFixed(0)} ms\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    if (result.load_s_median >= TARGET_S) {
      process.stderr.write(`viewer-load: median ${result.load_s_median} s misses the ${TARGET_S} s target\n`);
      process.exitCode = 1;
    }
  } finally {
    await browser.close();
    await viewer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
