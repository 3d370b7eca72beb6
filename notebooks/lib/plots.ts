/**
 * Plot helpers for the notebooks: plotly figure specs (heatmaps, scatters, bars) and a sink that
 * saves each figure as a standalone HTML page under `notebooks/outputs/<notebook>/` and, inside a
 * Jupyter kernel (Deno), also displays it inline.
 *
 * The HTML pages load plotly from the repository's own `node_modules/plotly.js-dist` by relative
 * path: no CDN, works offline. `scripts/run-notebooks.ts` renders them to PNG with headless
 * Chromium when it is installed.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A plotly figure: traces and layout, exactly as `Plotly.newPlot` takes them. */
export interface Figure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

/** The repository root (this file is notebooks/lib/plots.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Where notebooks write plots, runs and executed copies. */
export const OUTPUTS_ROOT = join(REPO_ROOT, 'notebooks', 'outputs');
/** A path relative to the repository root, for printing (committed outputs hold no machine paths). */
export const repoPath = (path: string): string => relative(REPO_ROOT, path);
/** The local plotly bundle the saved pages load. */
export const PLOTLY_BUNDLE = join(REPO_ROOT, 'node_modules', 'plotly.js-dist', 'plotly.js');

/** Diverging colours: blue (negative), white (0), red (positive). */
const DIVERGING = [
  [0, '#2166ac'],
  [0.5, '#f7f7f7'],
  [1, '#b2182b'],
];

/** Largest |value| of nested arrays (at least a tiny positive number, so a scale exists). */
export function maxAbs(...grids: number[][][]): number {
  let m = 1e-9;
  for (const g of grids) for (const row of g) for (const v of row) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

/** Axis labels for token positions: "3: John" (unique, so plotly does not merge repeated tokens). */
export function positionLabels(tokens: readonly string[]): string[] {
  return tokens.map((t, i) => `${i}:${t.trim() === '' ? JSON.stringify(t) : t.trim()}`);
}

/** One panel of a multi-panel heatmap. */
export interface HeatmapPanel {
  title: string;
  /** Rows [y][x]. */
  z: number[][];
}

/**
 * Side-by-side heatmaps sharing one symmetric colour scale (so magnitudes are comparable across
 * panels: every method estimates the same quantity).
 */
export function heatmapPanels(
  panels: readonly HeatmapPanel[],
  opts: { x: string[]; y: string[]; title: string; xTitle?: string; yTitle?: string; colorTitle?: string; /** 0..max white-to-red scale (e.g. attention) instead of a diverging one. */ sequential?: boolean },
): Figure {
  const m = maxAbs(...panels.map((p) => p.z));
  const n = panels.length;
  const gap = 0.04;
  const w = (1 - gap * (n - 1)) / n;
  const layout: Record<string, unknown> = {
    title: { text: opts.title },
    height: 200 + Math.max(34 * opts.y.length, 170),
    width: Math.max(420, 330 * n),
    margin: { l: 110, r: 30, t: 80, b: 110 },
    annotations: panels.map((p, i) => ({ text: `<b>${p.title}</b>`, x: i * (w + gap) + w / 2, y: 1.0, xref: 'paper', yref: 'paper', yanchor: 'bottom', showarrow: false })),
  };
  const data = panels.map((p, i) => {
    const ax = i === 0 ? '' : String(i + 1);
    layout[`xaxis${ax}`] = { domain: [i * (w + gap), i * (w + gap) + w], tickangle: -60, title: { text: opts.xTitle ?? '' }, type: 'category' };
    layout[`yaxis${ax}`] = { anchor: `x${ax}`, autorange: 'reversed', title: { text: i === 0 ? (opts.yTitle ?? '') : '' }, type: 'category', showticklabels: i === 0 };
    return {
      type: 'heatmap',
      z: p.z,
      x: opts.x,
      y: opts.y,
      xaxis: `x${ax}`,
      yaxis: `y${ax}`,
      zmin: opts.sequential ? 0 : -m,
      zmax: m,
      colorscale: opts.sequential ? DIVERGING.slice(1).map(([v, c]) => [(Number(v) - 0.5) * 2, c]) : DIVERGING,
      showscale: i === n - 1,
      colorbar: { title: { text: opts.colorTitle ?? '' }, len: 0.9 },
      hovertemplate: `${p.title}<br>%{y} · %{x}<br>%{z:.4f}<extra></extra>`,
    };
  });
  return { data, layout };
}

/** One panel of a multi-panel scatter. */
export interface ScatterPanel {
  title: string;
  x: number[];
  y: number[];
  /** Hover text per point. */
  text?: string[];
}

/** Side-by-side scatters of estimates (y) against the ground truth (x), each with the y = x line. */
export function scatterPanels(panels: readonly ScatterPanel[], opts: { title: string; xTitle: string; yTitle: string }): Figure {
  const n = panels.length;
  const gap = 0.06;
  const w = (1 - gap * (n - 1)) / n;
  const layout: Record<string, unknown> = {
    title: { text: opts.title },
    height: 400,
    width: Math.max(420, 340 * n),
    showlegend: false,
    margin: { l: 70, r: 20, t: 80, b: 60 },
    annotations: panels.map((p, i) => ({ text: `<b>${p.title}</b>`, x: i * (w + gap) + w / 2, y: 1.0, xref: 'paper', yref: 'paper', yanchor: 'bottom', showarrow: false })),
  };
  const data: Record<string, unknown>[] = [];
  panels.forEach((p, i) => {
    const ax = i === 0 ? '' : String(i + 1);
    layout[`xaxis${ax}`] = { domain: [i * (w + gap), i * (w + gap) + w], title: { text: opts.xTitle }, zeroline: true };
    layout[`yaxis${ax}`] = { anchor: `x${ax}`, title: { text: i === 0 ? opts.yTitle : '' }, zeroline: true };
    const all = [...p.x, ...p.y].filter(Number.isFinite);
    const lo = Math.min(...all);
    const hi = Math.max(...all);
    data.push({ type: 'scatter', mode: 'lines', x: [lo, hi], y: [lo, hi], xaxis: `x${ax}`, yaxis: `y${ax}`, line: { color: '#999', dash: 'dot' }, hoverinfo: 'skip' });
    data.push({ type: 'scatter', mode: 'markers', x: p.x, y: p.y, text: p.text, xaxis: `x${ax}`, yaxis: `y${ax}`, marker: { size: 6, opacity: 0.75, color: '#1f77b4' }, hovertemplate: '%{text}<br>x %{x:.4f}<br>y %{y:.4f}<extra></extra>' });
  });
  return { data, layout };
}

/** Grouped bars: one group per category, one bar per series. */
export function groupedBars(categories: string[], series: { name: string; values: number[] }[], opts: { title: string; yTitle: string }): Figure {
  return {
    data: series.map((s) => ({ type: 'bar', name: s.name, x: categories, y: s.values })),
    layout: { title: { text: opts.title }, barmode: 'group', height: 380, width: 720, yaxis: { title: { text: opts.yTitle } }, xaxis: { type: 'category', tickangle: -45 } },
  };
}

/** Lines over a shared x axis (e.g. faithfulness curves). */
export function lines(series: { name: string; x: number[]; y: number[] }[], opts: { title: string; xTitle: string; yTitle: string; logX?: boolean }): Figure {
  return {
    data: series.map((s) => ({ type: 'scatter', mode: 'lines+markers', name: s.name, x: s.x, y: s.y })),
    layout: {
      title: { text: opts.title },
      height: 420,
      width: 720,
      xaxis: { title: { text: opts.xTitle }, type: opts.logX ? 'log' : 'linear' },
      yaxis: { title: { text: opts.yTitle } },
    },
  };
}

/** A standalone HTML page for a figure, loading plotly from `plotlySrc` (a relative URL). */
export function figureHtml(fig: Figure, title: string, plotlySrc: string): string {
  // `</` inside a script would end it early; JSON allows the escaped form.
  const json = (v: unknown) => JSON.stringify(v).replace(/<\//g, '<\\/');
  const esc = title.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc}</title>
<script src="${plotlySrc}"></script></head>
<body style="margin:0;background:#fff">
<div id="plot"></div>
<script>
Plotly.newPlot('plot', ${json(fig.data)}, ${json(fig.layout)}, { responsive: false, displaylogo: false })
  .then(function () { document.body.setAttribute('data-ready', '1'); });
</script>
</body></html>
`;
}

interface DenoJupyter {
  display(obj: unknown, opts?: { raw?: boolean }): Promise<void>;
}

/** The Deno Jupyter API when this code runs inside the Deno kernel, else undefined. */
function jupyter(): DenoJupyter | undefined {
  const deno = (globalThis as { Deno?: { jupyter?: Partial<DenoJupyter> } }).Deno;
  return typeof deno?.jupyter?.display === 'function' ? (deno.jupyter as DenoJupyter) : undefined;
}

/** True inside a Jupyter kernel (Deno), false under tsx/node. */
export function inJupyter(): boolean {
  return jupyter() !== undefined;
}

/** Where one notebook saves its files, and how it shows figures. */
export class NotebookOutputs {
  /** Absolute folder of this notebook's files. */
  readonly dir: string;

  constructor(readonly notebook: string) {
    this.dir = join(OUTPUTS_ROOT, notebook);
    mkdirSync(this.dir, { recursive: true });
  }

  /** Absolute path of a file in this notebook's folder. */
  path(file: string): string {
    return join(this.dir, file);
  }

  /** The path relative to the repository root, for messages. */
  rel(file: string): string {
    return relative(REPO_ROOT, this.path(file));
  }

  /**
   * Save `fig` as `<name>.html` (and its spec as `<name>.json`), then show it: inline in Jupyter,
   * or as a line naming the file under tsx. Returns nothing, so a cell ending in `show` prints no
   * value (which would be a machine-specific path in the committed notebook).
   */
  async show(fig: Figure, name: string): Promise<void> {
    if (!existsSync(PLOTLY_BUNDLE)) throw new Error(`plotly bundle not found at ${PLOTLY_BUNDLE}; run npm install`);
    const html = this.path(`${name}.html`);
    const src = relative(this.dir, PLOTLY_BUNDLE).split('\\').join('/');
    const title = String((fig.layout.title as { text?: string } | undefined)?.text ?? name);
    writeFileSync(html, figureHtml(fig, title, src));
    writeFileSync(this.path(`${name}.json`), JSON.stringify(fig));
    const j = jupyter();
    if (j) {
      await j.display(
        {
          'application/vnd.plotly.v1+json': fig,
          'text/html': `<p>${title.replace(/</g, '&lt;')}: saved to <code>${this.rel(`${name}.html`)}</code> (open it in a browser if this frontend does not render plotly)</p>`,
          'text/plain': `plot "${title}" saved to ${this.rel(`${name}.html`)}`,
        },
        { raw: true },
      );
    } else {
      console.log(`plot "${title}" saved to ${this.rel(`${name}.html`)}`);
    }
  }
}
