/**
 * relp as others get it: `npm pack`, install the tarball into an empty project that has no
 * TypeScript loader, and use it from plain Node ESM — every public entry point, a model through
 * activation patching, AtP, RelP and a circuit (compared with the same calls on src/), the CLI
 * (`relp --help` without warnings, `relp demo` on the embedded model) and the viewer's assets.
 *
 * The install is the plain one a user runs (no --ignore-scripts, no overrides; before relp's
 * tokenizers came from @huggingface/tokenizers it failed in sharp's libvips download). It uses the
 * npm registry (`--prefer-offline`: the npm cache filled by this repo's install serves what it holds). On a machine without the registry, RELP_PACK_OFFLINE=1 installs
 * the tarball by hand instead: unpacked into node_modules/relp, its dependencies linked from this
 * repo's node_modules (what npm would resolve them to is then not checked).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as relpSrc from '../../src/index.ts';
import * as circuitsSrc from '../../src/circuits/index.ts';
import { readmeExamples } from '../helpers/readme-examples.ts';
import { exercise, PUBLIC_NAMES, type ExerciseResult } from './exercise.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
};
const OFFLINE = process.env.RELP_PACK_OFFLINE === '1';
interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a fresh shell: no npm lifecycle variables, no loader in NODE_OPTIONS. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'INIT_CWD' || k.startsWith('npm_lifecycle') || k.startsWith('npm_package') || k === 'npm_config_local_prefix' || k.startsWith('VITEST')) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

function run(cmd: string, args: string[], cwd: string, timeoutMs = 300_000, env = cleanEnv()): Promise<Result> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

/** TypeScript to plain ESM JavaScript: types stripped, imports kept as written. */
function toJs(code: string): string {
  return ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
}

/** Files under a folder, relative to it, with `/` separators. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)).split('\\').join('/'));
}

/** The viewer's browser assets in the source tree (what dist/viz/pages must serve). */
const PAGE_ASSETS = filesUnder(join(ROOT, 'src/viz/pages')).filter((f) => /\.(js|css)$/.test(f));

let work: string;
let consumer: string;
let tarball: string;
let packedFiles: string[];
let install: Result;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'relp-pack-'));
  // dist/ is fresh (test/global-setup.ts rebuilt it if stale). Packing with `prepare` would rebuild
  // it, and the build empties dist/ first, under the feet of other test files running the CLI.
  const pack = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT, 600_000);
  expect(pack.code, pack.stderr).toBe(0);
  const info = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info[0].filename);
  packedFiles = info[0].files.map((f) => f.path);

  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'relp-consumer', private: true, type: 'module' }, null, 2));
  if (OFFLINE) {
    const dest = join(consumer, 'node_modules', PKG.name);
    mkdirSync(dest, { recursive: true });
    const untar = await run('tar', ['-xzf', tarball, '-C', dest, '--strip-components=1'], consumer);
    expect(untar.code, untar.stderr).toBe(0);
    for (const dep of [...Object.keys(PKG.dependencies), ...Object.keys(PKG.optionalDependencies ?? {})]) {
      const from = join(ROOT, 'node_modules', dep);
      if (!existsSync(from)) continue; // an optional dependency that did not install here
      mkdirSync(dirname(join(consumer, 'node_modules', dep)), { recursive: true });
      symlinkSync(from, join(consumer, 'node_modules', dep), 'dir');
    }
    mkdirSync(join(consumer, 'node_modules', '.bin'));
    symlinkSync(join(dest, 'bin', 'relp.js'), join(consumer, 'node_modules', '.bin', 'relp'));
    install = { code: 0, stdout: 'offline: unpacked and linked', stderr: '' };
  } else {
    install = await run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], consumer, 600_000);
  }
}, 1_200_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the compiled library, the CLI, the viewer assets and the embedded model, and no TypeScript sources', () => {
    const need = ['package.json', 'README.md', 'bin/relp.js', 'dist/cli/main.js', 'dist/cli/help.txt', 'models/ioi-toy/config.json', 'models/ioi-toy/model.safetensors', 'models/ioi-toy/tokenizer.json'];
    for (const f of need) expect(packedFiles, f).toContain(f);
    for (const f of PAGE_ASSETS) expect(packedFiles, `viewer asset ${f}`).toContain(`dist/viz/pages/${f}`);
    expect(packedFiles.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(packedFiles.filter((f) => /^(src|test|bench|scripts|notebooks)\//.test(f))).toEqual([]);
  });

  it('every export target (JS and types) is in the tarball', () => {
    expect(Object.keys(PKG.exports).sort()).toEqual(['.', './circuits', './package.json', './viz']);
    for (const [entry, target] of Object.entries(PKG.exports)) {
      const paths = typeof target === 'string' ? [target] : Object.values(target);
      if (typeof target !== 'string') expect(Object.keys(target), entry).toEqual(['types', 'default']); // types first: TypeScript takes the first match
      for (const p of paths) expect(packedFiles, `${entry} -> ${p}`).toContain(p.replace(/^\.\//, ''));
    }
  });

  it('builds dist/ on prepare (npm install/ci, npm pack, npm publish)', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.prepare).toBe('npm run build');
    expect(scripts.build).toBe('node scripts/build.mjs');
  });

  it('needs no TypeScript loader at run time (tsx is a devDependency)', () => {
    expect(Object.keys(PKG.dependencies)).not.toContain('tsx');
    const bin = readFileSync(join(ROOT, 'bin/relp.js'), 'utf8');
    expect(bin).not.toMatch(/tsx|\.ts['"]/);
  });
});

describe('the tarball in a clean project', () => {
  it('installs', () => {
    expect(install.code, `npm install of the tarball failed:\n${install.stdout}\n${install.stderr}`).toBe(0);
    expect(existsSync(join(consumer, 'node_modules', 'relp', 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(consumer, 'node_modules', 'tsx')), 'the consumer must not get a TypeScript loader').toBe(false);
  });

  let result: ExerciseResult;
  it('every public entry imports from plain Node ESM, and a model runs through activation patching, AtP, RelP and a circuit', async () => {
    // The shared calls, transpiled to JavaScript (types stripped; exercise.ts imports only types).
    writeFileSync(join(consumer, 'exercise.mjs'), toJs(readFileSync(join(ROOT, 'test/package/exercise.ts'), 'utf8')));
    writeFileSync(
      join(consumer, 'main.mjs'),
      [
        "import * as tf from '@tensorflow/tfjs';",
        "import * as relp from 'relp';",
        "import * as circuits from 'relp/circuits';",
        "import * as viz from 'relp/viz';",
        "import { exercise, PUBLIC_NAMES } from './exercise.mjs';",
        'const entries = { relp, circuits, viz };',
        'const missing = Object.entries(PUBLIC_NAMES).flatMap(([e, names]) => names.filter((n) => !(n in entries[e])).map((n) => `${e}: ${n}`));',
        'const result = await exercise(tf, relp, circuits);',
        "process.stdout.write(JSON.stringify({ missing, loaders: process.execArgv, result }) + '\\n');",
      ].join('\n'),
    );
    const r = await run(process.execPath, ['main.mjs'], consumer);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { missing: string[]; loaders: string[]; result: ExerciseResult };
    expect(got.missing).toEqual([]);
    expect(got.loaders).toEqual([]);
    result = got.result;
    expect(result.backend).toBe('wasm');
    expect(result.leakedTensors).toBe(0);
  });

  it('gives the same numbers as the same calls on src/', async () => {
    expect(result, 'the previous test did not run').toBeDefined();
    const want = await exercise(tf, relpSrc, circuitsSrc);
    expect(want.leakedTensors).toBe(0);
    const flat = (r: ExerciseResult) => [r.baselines.clean, r.baselines.corrupt, ...(['activation', 'atp', 'relp'] as const).flatMap((m) => [...r[m].attn_out.flat(), ...r[m].z.flat()]), ...Object.values(r.circuit.auc), r.circuit.edges, r.circuit.recovered];
    expect(Object.keys(result.circuit.auc)).toEqual(Object.keys(want.circuit.auc));
    const a = flat(result);
    const b = flat(want);
    expect(a.length).toBe(b.length);
    a.forEach((v, i) => expect(v, `value ${i}`).toBeCloseTo(b[i], 9));
    // Not all zero (a broken grid would match a broken grid).
    expect(Math.max(...result.activation.z.flat().map(Math.abs))).toBeGreaterThan(0.01);
  });

  it('its declarations type a TypeScript consumer (strict, NodeNext): real types, not any', async () => {
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['use.ts'] }),
    );
    writeFileSync(
      join(consumer, 'use.ts'),
      [
        "import { activationPatch, initBackend, ioiSameLength, loadModelWithTokenizer, toPatchingData, type PatchResult } from 'relp';",
        "import { runCircuit, type CircuitRun } from 'relp/circuits';",
        "import { startViewer, type RunningViewer } from 'relp/viz';",
        'await initBackend();',
        'const { model, tokenizer } = await loadModelWithTokenizer();',
        "const data = toPatchingData(ioiSameLength(tokenizer, 4, 0, 'abc'));",
        "const act: PatchResult = await activationPatch(model, data, { components: ['z'] });",
        "const run: CircuitRun = runCircuit(model, data, { methods: ['eap'] });",
        'const total: number = act.baselines.clean + run.circuitRecovered;',
        "const viewer: Promise<RunningViewer> = startViewer({ runsDir: 'runs' });",
        '// @ts-expect-error components must be names: an `any` declaration would not catch this',
        'void activationPatch(model, data, { components: 3 });',
        '// @ts-expect-error not a method',
        "runCircuit(model, data, { methods: ['nope'] });",
        'void total; void viewer;',
      ].join('\n'),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await run(process.execPath, [tsc, '-p', consumer], consumer);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('`relp --help` and `npx relp --help` print the help and no warnings', async () => {
    const bin = join(consumer, 'node_modules', '.bin', 'relp');
    for (const [cmd, args] of [
      [bin, ['--help']],
      ['npx', ['relp', '--help']],
    ] as const) {
      const r = await run(cmd, [...args], consumer);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr, `${cmd} ${args.join(' ')}`).toBe('');
      expect(r.stdout).toMatch(/^Usage: relp \[options\] \[command\]/);
    }
  });

  it('`relp demo` runs on the shipped embedded model, and the viewer serves its pages, page assets and plotly', async () => {
    const demo = await run(join(consumer, 'node_modules', '.bin', 'relp'), ['demo', '--n', '8', '--no-serve', '--out', 'runs/demo'], consumer);
    expect(demo.code, demo.stderr).toBe(0);
    expect(existsSync(join(consumer, 'runs', 'demo', 'run.json'))).toBe(true);

    const urls = ['', 'runs/demo', ...PAGE_ASSETS.map((f) => `static/${f}`), 'vendor/plotly.js'];
    writeFileSync(
      join(consumer, 'viewer.mjs'),
      [
        "import { startViewer } from 'relp/viz';",
        "const viewer = await startViewer({ runsDir: 'runs' });",
        'const status = {};',
        `for (const u of ${JSON.stringify(urls)}) { const r = await fetch(viewer.url + u); await r.arrayBuffer(); status[u] = r.status; }`,
        'await viewer.close();',
        'process.stdout.write(JSON.stringify(status));',
      ].join('\n'),
    );
    const r = await run(process.execPath, ['viewer.mjs'], consumer);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(Object.fromEntries(urls.map((u) => [u, 200])));
  });

  it.each(readmeExamples().map((code, i) => [i + 1, code] as const))('README example %i runs as written (types stripped) from plain Node', async (n, code) => {
    const file = `readme-example-${n}.mjs`;
    writeFileSync(join(consumer, file), toJs(code));
    const r = await run(process.execPath, [file], consumer);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).not.toBe('');
  });
});
