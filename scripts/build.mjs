#!/usr/bin/env node
// Builds dist/: the library and CLI as ESM JavaScript + .d.ts (tsc, tsconfig.build.json), and the
// viewer's browser assets (src/viz/pages, served from dist/viz/pages by the compiled server).
// Plain JavaScript so it runs from `prepare` before anything is compiled. Writes dist/.build-stamp,
// which the test setup compares with src/ to rebuild a stale dist/.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');

rmSync(DIST, { recursive: true, force: true }); // no stale files from renamed or deleted sources
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(`build: tsc failed (exit ${r.status ?? r.signal})\n`);
  process.exit(1);
}
// Page scripts are plain browser JS; their hand-written .d.ts are only for type-checking them.
cpSync(join(ROOT, 'src/viz/pages'), join(DIST, 'viz/pages'), { recursive: true, filter: (src) => !src.endsWith('.d.ts') });

// `relp --help` from a file: the command modules import TensorFlow.js and the tokenizer library at
// load (~1 s of CPU), which the top-level listing does not need. Written only when the text does
// not depend on the environment; bin/relp.js prints it for `relp --help`/`-h`/`help`.
const { buildProgram } = await import(pathToFileURL(join(DIST, 'cli/main.js')).href);
const help = (env) => {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    let text = '';
    buildProgram().configureOutput({ writeOut: (s) => void (text += s), getOutHelpWidth: () => HELP_WIDTH }).outputHelp();
    return text;
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
};
const HELP_WIDTH = 80;
const a = help({ HOME: '/__a__', XDG_CACHE_HOME: '/__a__/c', RELP_CACHE_DIR: '/__a__/r', HF_ENDPOINT: 'http://a.invalid' });
const b = help({ HOME: '/__b__', XDG_CACHE_HOME: '/__b__/c', RELP_CACHE_DIR: '/__b__/r', HF_ENDPOINT: 'http://b.invalid' });
if (a === b) writeFileSync(join(DIST, 'cli/help.txt'), a);
else process.stderr.write('build: `relp --help` depends on the environment; not cached (the CLI renders it)\n');

writeFileSync(join(DIST, '.build-stamp'), `${new Date().toISOString()}\n`);
