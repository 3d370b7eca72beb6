/**
 * `npm run notebooks`: execute every notebook headless and fail on any error.
 *
 * Notebook sources are `notebooks/NN-*.ts` (percent format); `notebooks/NN-*.ipynb` are generated
 * from them (`--sync`) and must match them apart from outputs (checked first). Two engines:
 * - `jupyter`: a Jupyter client (`notebooks/lib/execute_notebook.py`, on Debian's jupyter_client and
 *   nbformat) runs each `.ipynb` on the Deno kernel (npm package `deno`) through a private
 *   kernelspec, so nothing is installed for the user. The executed notebooks, with their outputs,
 *   go to `notebooks/outputs/NN-*.ipynb` and, for each notebook that ran without error, back to
 *   `notebooks/NN-*.ipynb`, so the committed notebooks carry their outputs. (Not
 *   `jupyter nbconvert --execute`: it drops the Deno kernel's output that arrives after a cell's
 *   idle status.) The notebooks import 'relp', which Deno resolves through package.json "exports"
 *   to dist/, so dist/ is rebuilt first when stale.
 * - `tsx`: run the `.ts` sources with tsx (Node), where Jupyter is not installed.
 * `auto` (default) picks `jupyter` when both a Python with jupyter_client and `deno` are found, else `tsx`.
 * After the run, the plots saved as HTML are rendered to PNG with headless Chromium when it exists.
 *
 * Offline: nothing here touches the network (kernel, plotly and model all come from the repo).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { ipynbText, keepOutputs, notebookText, withoutOutputs } from '../notebooks/lib/percent-format.ts';
import { ensureFreshDist } from './fresh-dist.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const NB_DIR = join(ROOT, 'notebooks');
const OUT_DIR = join(NB_DIR, 'outputs');

type Engine = 'jupyter' | 'tsx';

/** Notebook names (without extension) in order: `notebooks/NN-*.ts`. */
export function notebookNames(): string[] {
  return readdirSync(NB_DIR)
    .filter((f) => /^\d\d-[\w-]+\.ts$/.test(f))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort();
}

/** Names whose committed `.ipynb`, outputs aside, differs from what its `.ts` source generates. */
export function outOfSync(names: string[]): string[] {
  return names.filter((n) => {
    const ipynb = join(NB_DIR, `${n}.ipynb`);
    return !existsSync(ipynb) || withoutOutputs(readFileSync(ipynb, 'utf8')) !== ipynbText(readFileSync(join(NB_DIR, `${n}.ts`), 'utf8'), n);
  });
}

/** Write `notebooks/NN.ipynb` from its source, keeping the outputs of unchanged code cells. */
function syncNotebook(name: string): void {
  const ipynb = join(NB_DIR, `${name}.ipynb`);
  const committed = existsSync(ipynb) ? readFileSync(ipynb, 'utf8') : undefined;
  writeFileSync(ipynb, keepOutputs(ipynbText(readFileSync(join(NB_DIR, `${name}.ts`), 'utf8'), name), committed));
}

function which(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

/** The deno binary: the npm package's in node_modules, else one on PATH. */
function findDeno(): string | undefined {
  const local = join(ROOT, 'node_modules', '.bin', 'deno');
  if (existsSync(local) && which(local, ['--version'])) return local;
  return which('deno', ['--version']) ? 'deno' : undefined;
}

/** A Python that can import jupyter_client and nbformat (Debian's first, then the one on PATH). */
function findPython(): string | undefined {
  for (const py of [process.env.RELP_NOTEBOOK_PYTHON, '/usr/bin/python3', 'python3']) {
    if (py && which(py, ['-c', 'import jupyter_client, nbformat'])) return py;
  }
  return undefined;
}

/** A private Jupyter data dir holding a `deno` kernelspec that points at `deno`. */
function kernelspecDir(deno: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'relp-kernels-'));
  mkdirSync(join(dir, 'kernels', 'deno'), { recursive: true });
  writeFileSync(
    join(dir, 'kernels', 'deno', 'kernel.json'),
    JSON.stringify({ argv: [deno, 'jupyter', '--kernel', '--conn', '{connection_file}'], display_name: 'Deno', language: 'typescript' }, null, 2),
  );
  return dir;
}

/** Cut very long lines (a wasm crash can print the whole minified module on one line). */
function clip(line: string): string {
  return line.length > 600 ? `${line.slice(0, 600)} … [${line.length - 600} more characters]` : line;
}

/** Run a command, streaming clipped output to stdout and to a log file. Resolves to the exit code. */
function runLogged(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; log: string; timeoutS: number }): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const log = createWriteStream(opts.log);
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      process.stdout.write(`  timed out after ${opts.timeoutS} s; killing\n`);
      child.kill('SIGKILL');
    }, opts.timeoutS * 1000);
    const pipe = (stream: NodeJS.ReadableStream) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) {
          const c = clip(l);
          process.stdout.write(`  │ ${c}\n`);
          log.write(c + '\n');
        }
      });
      stream.on('end', () => {
        if (buf) {
          process.stdout.write(`  │ ${clip(buf)}\n`);
          log.write(clip(buf) + '\n');
        }
      });
    };
    pipe(child.stdout!);
    pipe(child.stderr!);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      log.end();
      resolvePromise(code ?? (signal ? 128 : 1));
    });
  });
}

/** Render every saved plot page to PNG next to it (needs Chromium); returns how many. */
async function renderPngs(names: string[]): Promise<number> {
  const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromiumPath)) {
    process.stdout.write(`png: skipped (no Chromium at ${chromiumPath}; set CHROMIUM_PATH)\n`);
    return 0;
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--allow-file-access-from-files'],
  });
  let n = 0;
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    for (const nb of names) {
      const dir = join(OUT_DIR, nb);
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.html')).sort()) {
        const file = join(dir, f);
        await page.goto(`file://${file}`);
        await page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
        await (await page.$('#plot'))!.screenshot({ path: file.replace(/\.html$/, '.png') });
        n++;
      }
    }
  } finally {
    await browser.close();
  }
  return n;
}

async function main(): Promise<void> {
  const program = new Command()
    .name('run-notebooks')
    .description('Execute the notebooks headless (fails on any error).')
    .argument('[notebooks...]', 'names like 01-hooked-model (default: all)')
    .addOption(new Option('--engine <engine>', 'jupyter: the .ipynb on the Deno kernel; tsx: the .ts sources with tsx').choices(['auto', 'jupyter', 'tsx']).default('auto'))
    .option('--sync', 'write notebooks/*.ipynb from their .ts sources, then exit')
    .option('--check', 'only check that the .ipynb files match their .ts sources')
    .option('--no-png', 'do not render the saved plots to PNG')
    .option('--timeout <seconds>', 'time limit per notebook', (v) => Number(v), 900)
    .parse(process.argv);
  const o = program.opts<{ engine: 'auto' | Engine; sync?: boolean; check?: boolean; png: boolean; timeout: number }>();
  const all = notebookNames();
  const wanted = program.args.length ? program.args.map((a) => basename(a).replace(/\.(ts|ipynb)$/, '')) : all;
  for (const w of wanted) if (!all.includes(w)) throw new Error(`no notebook "${w}" (have: ${all.join(', ')})`);

  if (o.sync) {
    for (const n of wanted) syncNotebook(n);
    process.stdout.write(`notebooks: wrote ${wanted.map((n) => `${n}.ipynb`).join(', ')}\n`);
    return;
  }
  const stale = outOfSync(wanted);
  if (stale.length) {
    throw new Error(`${stale.map((n) => `notebooks/${n}.ipynb`).join(', ')} out of sync with the .ts source; run: npx tsx scripts/run-notebooks.ts --sync`);
  }
  if (o.check) {
    process.stdout.write(`notebooks: ${wanted.length} .ipynb files match their sources\n`);
    return;
  }

  const deno = findDeno();
  const python = findPython();
  const hasJupyter = python !== undefined;
  let engine: Engine;
  if (o.engine === 'auto') {
    engine = deno && hasJupyter ? 'jupyter' : 'tsx';
    if (engine === 'tsx') process.stdout.write(`notebooks: ${!hasJupyter ? 'a Python with jupyter_client and nbformat' : 'deno'} not found, running the .ts sources with tsx\n`);
  } else {
    engine = o.engine;
    if (engine === 'jupyter' && !hasJupyter) throw new Error('--engine jupyter: no Python with jupyter_client and nbformat (Debian: apt-get install python3-jupyter-client python3-nbformat; or set RELP_NOTEBOOK_PYTHON)');
    if (engine === 'jupyter' && !deno) throw new Error('--engine jupyter: deno not found (npm install keeps it in node_modules/.bin; or put deno on PATH)');
  }

  mkdirSync(OUT_DIR, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  let kernels: string | undefined;
  if (engine === 'jupyter') {
    ensureFreshDist();
    kernels = kernelspecDir(deno!);
    env.JUPYTER_PATH = [kernels, process.env.JUPYTER_PATH].filter(Boolean).join(delimiter);
  }
  const results: { name: string; ok: boolean; seconds: number }[] = [];
  const t0 = performance.now();
  try {
    for (const name of wanted) {
      process.stdout.write(`\n▶ ${name} (${engine})\n`);
      const t = performance.now();
      const log = join(OUT_DIR, `${name}.log`);
      const code =
        engine === 'jupyter'
          ? await runLogged(python!, [join(NB_DIR, 'lib', 'execute_notebook.py'), `${name}.ipynb`, join(OUT_DIR, `${name}.ipynb`), '--kernel', 'deno', '--timeout', String(o.timeout)], {
              cwd: NB_DIR,
              env,
              log,
              timeoutS: o.timeout + 60,
            })
          : await runLogged(join(ROOT, 'node_modules', '.bin', 'tsx'), [`${name}.ts`], { cwd: NB_DIR, env, log, timeoutS: o.timeout });
      const seconds = (performance.now() - t) / 1000;
      results.push({ name, ok: code === 0, seconds });
      // The committed notebook gets the outputs of a clean run (in nbformat's own key order, as generated).
      if (code === 0 && engine === 'jupyter') writeFileSync(join(NB_DIR, `${name}.ipynb`), notebookText(JSON.parse(readFileSync(join(OUT_DIR, `${name}.ipynb`), 'utf8'))));
      process.stdout.write(`${code === 0 ? '✔' : '✘'} ${name}: ${code === 0 ? 'ok' : `failed (exit ${code}); log: ${relative(ROOT, log)}`} in ${seconds.toFixed(1)} s\n`);
    }
  } finally {
    if (kernels) rmSync(kernels, { recursive: true, force: true });
  }
  const ok = results.filter((r) => r.ok);
  let pngs = 0;
  if (o.png && ok.length) {
    try {
      pngs = await renderPngs(ok.map((r) => r.name));
    } catch (err) {
      process.stdout.write(`png: rendering failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  const failed = results.filter((r) => !r.ok);
  process.stdout.write(
    `\nnotebooks: ${ok.length} passed, ${failed.length} failed (${engine}) in ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      `${pngs ? `; ${pngs} plots rendered to PNG` : ''}; outputs in ${relative(ROOT, OUT_DIR)}/` +
      (failed.length ? `; failed: ${failed.map((r) => r.name).join(', ')}` : '') +
      '\n',
  );
  if (failed.length) process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`run-notebooks: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
