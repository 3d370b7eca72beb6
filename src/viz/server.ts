/**
 * The local, read-only viewer: an Express app over a runs directory.
 *
 * Pages: `/` (runs), `/runs/:id` (heatmaps, scatters, correlation table), `/runs/:id/circuit`
 * (edge graph). API (JSON): `/api/runs`, `/api/runs/:id`, `/api/runs/:id/circuit`,
 * `/api/runs/:id/faithfulness`, `/api/runs/:id/correlations`. Client code is plain ES modules
 * served from `src/viz/pages/`, plotly from the local `plotly.js-dist` package.
 */
import { existsSync, promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { correlationTable } from '../patching/correlation.ts';
import { ViewerDataError } from './errors.ts';
import { errorPage, escapeHtml, pageShell } from './html.ts';
import { RunStore } from './run-store.ts';
import { isValidRunId } from './safe-path.ts';
import { LOOPBACK_HOSTS, PLOTLY_CSP, hostAllowList, readOnly, securityHeaders } from './security.ts';
import type { RunFile } from '../contracts/run.ts';

/** Folder of the client modules and CSS (served under `/static/`). */
export const PAGES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pages');

/** Path of the local plotly bundle: `plotly.min.js` when the package has one, else `plotly.js`. */
export function plotlyBundlePath(): string {
  const dir = path.dirname(createRequire(import.meta.url).resolve('plotly.js-dist/package.json'));
  const min = path.join(dir, 'plotly.min.js');
  return existsSync(min) ? min : path.join(dir, 'plotly.js');
}

/** Options of {@link createViewerApp}. */
export interface ViewerAppOptions {
  /**
   * Host names accepted in the Host header; `null` accepts any. Default: loopback names
   * (localhost, 127.0.0.1, [::1]), which is right for a viewer bound to 127.0.0.1.
   */
  allowedHosts?: readonly string[] | null;
}

/** JSON error body of the API: `{error: {status, message}}`. */
function sendApiError(res: Response, err: unknown): void {
  const status = err instanceof ViewerDataError ? err.status : 500;
  const message = err instanceof ViewerDataError ? err.message : 'internal error';
  if (!(err instanceof ViewerDataError)) process.stderr.write(`relp view: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  res.status(status).setHeader('Cache-Control', 'no-store');
  res.json({ error: { status, message } });
}

function sendJsonBytes(res: Response, raw: Buffer): void {
  res.setHeader('Cache-Control', 'no-store');
  res.type('application/json').send(raw);
}

/** Run id from the route, or null (never used to build a path unless valid). */
function runIdParam(req: Request): string | null {
  const id = req.params.id;
  return typeof id === 'string' && isValidRunId(id) ? id : null;
}

/**
 * Build the viewer app for `runsDir`. The directory is read on every request (through a cache keyed
 * by mtime), so runs written while the viewer is open appear on reload.
 */
export function createViewerApp(runsDir: string, opts: ViewerAppOptions = {}): express.Express {
  const store = new RunStore(runsDir);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', 'strong');
  app.use(securityHeaders);
  app.use(hostAllowList(opts.allowedHosts === undefined ? LOOPBACK_HOSTS : opts.allowedHosts));
  app.use(readOnly);
  addStaticRoutes(app);
  addApiRoutes(app, store);
  addPageRoutes(app, store);
  addFallbacks(app);
  return app;
}

/** Client modules and CSS under `/static/`, the local plotly bundle at `/vendor/plotly.js`. */
function addStaticRoutes(app: express.Express): void {
  // Only .js and .css, no directory listings or dotfiles.
  const statics = express.static(PAGES_DIR, { index: false, redirect: false, dotfiles: 'ignore', fallthrough: true, setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache') });
  app.use('/static', (req, res, next) => (/\.(js|css)$/.test(req.path) ? statics(req, res, next) : next()));
  const plotly = plotlyBundlePath();
  app.get('/vendor/plotly.js', (_req, res, next) => {
    res.sendFile(plotly, { headers: { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' } }, (err) => err && next(err));
  });
}

/**
 * The JSON API (README, "The viewer's JSON API"): `/api/runs`, and per run its `run.json`,
 * `circuit.json`, faithfulness curves and correlation table. Errors are `{error: {status, message}}`.
 */
function addApiRoutes(app: express.Express, store: RunStore): void {
  app.get('/api/runs', async (_req, res) => {
    try {
      res.setHeader('Cache-Control', 'no-store');
      res.json({ runsDir: store.runsDir, runs: await store.list() });
    } catch (err) {
      sendApiError(res, err);
    }
  });
  /** A route for one run: `send` answers with what the run's files give (errors become API errors). */
  const perRun = (send: (id: string, res: Response) => Promise<void>) => async (req: Request, res: Response) => {
    const id = runIdParam(req);
    if (!id) return sendApiError(res, new ViewerDataError(404, 'invalid run id'));
    try {
      await send(id, res);
    } catch (err) {
      sendApiError(res, err);
    }
  };
  app.get('/api/runs/:id', perRun(async (id, res) => sendJsonBytes(res, (await store.loadRun(id)).raw)));
  app.get('/api/runs/:id/circuit', perRun(async (id, res) => sendJsonBytes(res, (await store.loadCircuit(id)).raw)));
  app.get('/api/runs/:id/faithfulness', perRun(async (id, res) => {
    const curves = (await store.loadFaithfulness(id)).data.curves; // always an array, whether the file holds one curve or several
    res.setHeader('Cache-Control', 'no-store');
    res.json(curves);
  }));
  app.get('/api/runs/:id/correlations', perRun(async (id, res) => {
    const run = (await store.loadRun(id)).data;
    res.setHeader('Cache-Control', 'no-store');
    res.json(correlationTable(run.scores, { metric: run.metric }));
  }));
  app.use('/api', (_req, res) => sendApiError(res, new ViewerDataError(404, 'no such API endpoint')));
}

const topBar = (extra = '') => `<header class="topbar"><a href="/">relp viewer</a>${extra}</header>`;

/** An HTML error page for a failed page request (the message of a data error, never a stack). */
function pageError(res: Response, err: unknown, id: string | null): void {
  const status = err instanceof ViewerDataError ? err.status : 500;
  const message = err instanceof ViewerDataError ? err.message : 'internal error';
  if (!(err instanceof ViewerDataError)) process.stderr.write(`relp view: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  const title = status === 404 ? 'Run not found' : status === 422 ? `Run ${id ?? ''} cannot be shown` : 'Viewer error';
  res.status(status).type('html').send(errorPage(status, title, message));
}

/** The HTML pages: `/` (runs), `/runs/:id`, `/runs/:id/circuit`, and the `/circuit?run=` redirect. */
function addPageRoutes(app: express.Express, store: RunStore): void {
  app.get('/', (_req, res) => {
    res.type('html').send(
      pageShell({
        title: 'relp runs',
        modules: ['/static/index/index.js'],
        bodyHtml: `${topBar()}
<main class="page" id="app">
<h1>Runs</h1>
<p class="muted">in <code id="runs-dir">${escapeHtml(store.runsDir)}</code></p>
<div id="runs" aria-live="polite">Loading…</div>
</main>`,
      }),
    );
  });
  app.get('/runs/:id', (req, res) => runPage(store, req, res));
  app.get('/runs/:id/circuit', async (req, res) => {
    const id = runIdParam(req);
    if (!id) return pageError(res, new ViewerDataError(404, 'invalid run id'), null);
    try {
      await store.loadCircuit(id);
    } catch (err) {
      return pageError(res, err, id);
    }
    res.type('html').send(
      pageShell({
        title: `relp · ${id} · circuit`,
        data: { 'run-id': id },
        modules: ['/static/circuit/index.js'],
        bodyHtml: `${topBar(` / <a href="/runs/${encodeURIComponent(id)}">${escapeHtml(id)}</a> / circuit`)}
<main class="page circuit-page" id="app"><div id="circuit" aria-live="polite">Loading…</div></main>`,
      }),
    );
  });
  // `/circuit?run=<id>&method=..&threshold=..&pins=..` -> the canonical circuit URL.
  app.get('/circuit', (req, res) => {
    const run = req.query.run;
    if (!isValidRunId(run)) return pageError(res, new ViewerDataError(404, 'missing or invalid ?run= id'), null);
    const q = new URLSearchParams();
    for (const key of ['method', 'threshold', 'pins']) {
      const v = req.query[key];
      if (typeof v === 'string') q.set(key, v);
    }
    const qs = q.toString();
    res.redirect(302, `/runs/${encodeURIComponent(run)}/circuit${qs ? `?${qs}` : ''}`);
  });
}

/** `/runs/:id`: the run page, or (a folder with only a circuit) the page with a link to the circuit. */
async function runPage(store: RunStore, req: Request, res: Response): Promise<void> {
  const id = runIdParam(req);
  if (!id) return pageError(res, new ViewerDataError(404, 'invalid run id'), null);
  let run: RunFile | null = null;
  try {
    run = (await store.loadRun(id)).data;
  } catch (err) {
    const hasCircuit = await store.loadCircuit(id).then(() => true, () => false);
    if (!(err instanceof ViewerDataError && err.status === 404 && hasCircuit)) {
      const links = hasCircuit ? [{ href: `/runs/${encodeURIComponent(id)}/circuit`, text: 'circuit of this run' }] : [];
      const status = err instanceof ViewerDataError ? err.status : 500;
      const title = status === 404 ? 'Run not found' : `Run ${id} cannot be shown`;
      return void res.status(status).type('html').send(errorPage(status, title, err instanceof ViewerDataError ? err.message : 'internal error', links));
    }
  }
  // Link the circuit page only when the folder has a circuit.json (a broken one still links: its page names the problem).
  const circuitLink = await store.loadCircuit(id).then(
    () => true,
    (e) => !(e instanceof ViewerDataError && e.status === 404),
  );
  res.setHeader('Content-Security-Policy', PLOTLY_CSP);
  res.type('html').send(
    pageShell({
      title: `relp · ${id}`,
      data: { 'run-id': id, 'has-run': run ? '1' : '0' },
      scripts: run ? ['/vendor/plotly.js'] : [],
      modules: ['/static/run/index.js'],
      bodyHtml: `${topBar(` / <span>${escapeHtml(id)}</span>${circuitLink ? ` · <a href="/runs/${encodeURIComponent(id)}/circuit">circuit</a>` : ''}`)}
<main class="page" id="app"><h1>${escapeHtml(id)}</h1><div id="run" aria-live="polite">Loading…</div></main>`,
    }),
  );
}

/** 404 for everything else, and Express's own errors (e.g. a malformed %-encoding) with no stack or paths. */
function addFallbacks(app: express.Express): void {
  app.use((req: Request, res: Response) => {
    res.status(404).type('html').send(errorPage(404, 'Not found', `no page at ${req.path}`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
    const safe = status >= 400 && status < 500 ? status : 500;
    if (safe === 500) process.stderr.write(`relp view: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    const message = safe === 500 ? 'internal error' : 'bad request';
    if (req.path.startsWith('/api/')) res.status(safe).json({ error: { status: safe, message } });
    else res.status(safe).type('html').send(errorPage(safe, message, message));
  });
}

/** Options of {@link startViewer}. */
export interface StartViewerOptions {
  runsDir: string;
  /** TCP port; 0 (default) picks a free one. The CLI defaults to 7878. */
  port?: number;
  /** Interface to bind; default 127.0.0.1 (loopback only). */
  host?: string;
  /** See {@link ViewerAppOptions.allowedHosts}; default: loopback names when bound to loopback, else any. */
  allowedHosts?: readonly string[] | null;
}

/** A running viewer. */
export interface RunningViewer {
  /** e.g. `http://127.0.0.1:7878/` */
  url: string;
  /** The address the server actually bound (host and port as reported by the OS). */
  address: AddressInfo;
  close(): Promise<void>;
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Start the viewer. Rejects with a clear error when the runs directory is missing or the port is taken.
 */
export async function startViewer(opts: StartViewerOptions): Promise<RunningViewer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port ${port}: expected an integer 0–65535`);
  const st = await fs.stat(opts.runsDir).catch(() => null);
  if (!st) throw new Error(`runs directory ${JSON.stringify(opts.runsDir)} does not exist`);
  if (!st.isDirectory()) throw new Error(`runs directory ${JSON.stringify(opts.runsDir)} is not a directory`);
  const allowedHosts = opts.allowedHosts !== undefined ? opts.allowedHosts : isLoopback(host) ? LOOPBACK_HOSTS : null;
  const app = createViewerApp(opts.runsDir, { allowedHosts });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, host);
    s.once('listening', () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new Error(`port ${port} on ${host} is already in use; pass --port 0 to pick a free port`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new Error(`cannot bind ${host}: no such local address`));
      else reject(err);
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return {
    url: `http://${urlHost}:${address.port}/`,
    address,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
