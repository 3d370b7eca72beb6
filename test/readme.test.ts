/**
 * The README is executable documentation:
 * - its CLI reference equals the `--help` of the commander program (regenerate with
 *   `npx tsx docs/cli-reference.ts --write`);
 * - its hook table matches the code's hook names and shapes;
 * - its TypeScript examples type-check and run on the embedded model;
 * - every shell command in it is listed in {@link COVERAGE} with where it is exercised, and the
 *   ones marked `this test` are run here exactly as written (the GPT-2 reproduction commands
 *   against a local stand-in for the Hugging Face Hub serving a random GPT-2 with the real GPT-2
 *   tokenizer, since there is no internet).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BEGIN, CLI_END, extractCliSection, renderCliReference, replaceCliSection } from '../docs/cli-reference.ts';
import { allHookNames, hookShape } from '../src/hooks/hook-points.ts';
import type { BaseConfig } from '../src/models/config.ts';
import { randomStateDict } from '../src/models/state-dict.ts';
import { parseJsonlDataset } from '../src/tasks/jsonl.ts';
import { loadTokenizer } from '../src/tokenizer.ts';
import { makeTmpModelDir } from './helpers/tmp-model.ts';
import { startHubServer } from './helpers/hub-server.ts';
import { toSourceImports } from './helpers/readme-examples.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const BIN = join(ROOT, 'bin', 'relp.js');
const ARTIFACTS = join(ROOT, 'test', 'artifacts', 'readme');

/**
 * Where each README shell command is exercised. `this test` means it is run below exactly as
 * written (`npx relp` → `node bin/relp.js`, `~` → a temporary HOME); `CI: ...` names the `.ci/run`
 * step that runs it; other entries name the test that covers it.
 */
const COVERAGE: Record<string, string> = {
  'npm install': 'CI: .ci/run installs with `npm ci` (the lockfile form of npm install)',
  'npm start': 'CI: .ci/run starts `npm start`, waits for the viewer URL and fetches it',
  'npm start -- --no-serve --out runs/demo': 'CI: .ci/run',
  'npx relp compare runs/demo': 'CI: .ci/run (after the demo)',
  'npm test': 'CI: .ci/run',
  'npm run notebooks': 'CI: .ci/run',
  'npm run typecheck': 'CI: .ci/run',
  'npm run docs': 'CI: .ci/run (TypeDoc with treatWarningsAsErrors)',
  'npm run build': 'test/global-setup.ts runs it before the tests when dist/ is stale; in .ci/run `npm ci` runs it through `prepare` (checked there)',
  'npm run bench -- --quick': 'test/bench/bench.test.ts runs runBench (what the script calls) on a tiny model; the benchmark itself is timed work, not a test',
  'npm run bench': 'test/bench/bench.test.ts (as above)',
  'npx tsx docs/cli-reference.ts --write': 'this test: renderCliReference/replaceCliSection, the two functions the script calls, are checked below',
  'npx relp logits --text "When Mary and John went to the store, John gave a drink to"': 'this test',
  'npx relp lrp --text "When Mary and John went to the store, John gave a drink to" --target " Mary" --contrast " John"': 'this test',
  "npx relp patch --task ioi --n 16 --methods 'activation,atp,atp*,relp' --components resid_pre,attn_out,mlp_out,z --out runs/ioi-16": 'this test',
  'npx relp compare runs/ioi-16': 'this test',
  'npx relp patch --dataset docs/examples/pairs.jsonl --methods activation,atp,relp --rules relp-ah --out runs/jsonl': 'this test',
  'npx relp circuit --task ioi --n 16 --method eap-relp,eap,eap-ig --out runs/ioi-16': 'this test',
  'npx relp view runs': 'this test (started, its URL fetched, then stopped)',
  'npx relp circuit --task ioi --n 16 --method eap-ig,eap --mib-out runs/ioi-mib/eap-ig.json --out runs/ioi-mib': 'this test',
  'npx relp circuit --task ioi --n 16 --from-mib runs/ioi-mib/eap-ig.json --out runs/ioi-mib-read': 'this test (the round trip itself: test/circuits/mib-command.test.ts)',
  'npx relp download openai-community/gpt2': 'this test (HF_ENDPOINT = a local hub serving a random GPT-2 with the GPT-2 tokenizer)',
  'npx relp patch --model ~/.cache/relp/models/openai-community__gpt2 --dataset docs/examples/ioi-gpt2-demo.jsonl --methods activation,atp,relp --components resid_pre,attn_out,mlp_out --rules relp --out runs/gpt2-ioi':
    'this test (on the downloaded random GPT-2)',
  'npx relp compare runs/gpt2-ioi': 'this test',
  'npx relp patch --workers 2 --task ioi --n 16 --methods activation,atp,relp --components resid_pre,attn_out,mlp_out,z --out runs/ioi-16-w2': 'CI: .ci/run',
  'redis-server --bind 10.0.0.5 --port 6379 --requirepass s3cret':
    'not run (needs that network); .ci/run and test/helpers/redis.ts start redis-server the same way on 127.0.0.1 without a password; password URLs: parseQueueUrl in test/sweeps/sharded.test.ts',
  'npx relp worker --queue redis://:s3cret@10.0.0.5:6379/ioi': 'test/sweeps/distributed.test.ts runs relp worker --queue redis://127.0.0.1:PORT/NAME',
  'npx relp patch --queue redis://:s3cret@10.0.0.5:6379/ioi --task ioi --n 64 --methods activation,atp,relp --out runs/ioi-64':
    'test/sweeps/distributed.test.ts runs relp patch --task ioi --queue redis://127.0.0.1:PORT/NAME (with 2 relp worker processes, and the fault cases)',
    'npx relp circuit --model ~/.cache/relp/models/openai-community__gpt2 --dataset docs/examples/ioi-gpt2-demo.jsonl --method eap-relp,eap,eap-ig --out runs/gpt2-ioi': 'this test (on the downloaded random GPT-2)',
};

/** Fenced code blocks of a language. */
function codeBlocks(md: string, lang: string): string[] {
  return [...md.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].filter((m) => m[1] === lang).map((m) => m[2]);
}

/** The commands of the README's `sh` blocks, one per line (comments dropped). */
function readmeCommands(): string[] {
  return codeBlocks(README, 'sh').flatMap((b) =>
    b
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter((l) => l !== '' && !l.startsWith('#')),
  );
}

/** Split a command line into words (double and single quotes; no other shell syntax). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const m of line.matchAll(re)) words.push(m[1] ?? m[2] ?? m[3]);
  return words;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `npx relp ...` from the README as `node bin/relp.js ...` in `cwd`, with `~` → `home`. */
function runReadme(line: string, opts: { cwd: string; home?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Result> {
  const words = shellWords(line);
  expect(words.slice(0, 2)).toEqual(['npx', 'relp']);
  const args = words.slice(2).map((w) => (opts.home && w.startsWith('~/') ? join(opts.home, w.slice(2)) : w));
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 240_000);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr: stderr.slice(-4000) });
    });
  });
}

/** The README command that starts with `prefix` (exactly one). */
function command(prefix: string): string {
  const hits = readmeCommands().filter((c) => c.startsWith(prefix));
  expect(hits, `README commands starting with ${JSON.stringify(prefix)}`).toHaveLength(1);
  return hits[0];
}

/** A work folder with `docs` linked in, so README paths like docs/examples/... resolve. */
function workDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  symlinkSync(join(ROOT, 'docs'), join(dir, 'docs'));
  return dir;
}

const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups.reverse()) c();
});

describe('README: CLI reference', () => {
  it('equals the --help of every command of buildProgram() (run `npx tsx docs/cli-reference.ts --write` after changing the CLI)', () => {
    const section = extractCliSection(README);
    expect(section, `README.md needs the markers ${CLI_BEGIN} … ${CLI_END}`).toBeDefined();
    expect(section).toBe(renderCliReference());
  });

  it('documents every command and option the parser accepts', () => {
    const section = renderCliReference();
    for (const name of ['demo', 'logits', 'patch', 'compare', 'lrp', 'circuit', 'view', 'download']) {
      expect(section).toContain(`relp ${name} --help`);
    }
    expect(section).not.toMatch(/\/root|\/home\//); // no machine-specific paths
  });

  it('replaceCliSection swaps exactly the marked section', () => {
    const md = `intro\n${CLI_BEGIN}\nold\n${CLI_END}\noutro\n`;
    expect(replaceCliSection(md, `${CLI_BEGIN}\nnew $& $1\n${CLI_END}`)).toBe(`intro\n${CLI_BEGIN}\nnew $& $1\n${CLI_END}\noutro\n`);
    expect(() => replaceCliSection('no markers', 'x')).toThrow(/markers/);
  });
});

describe('README: hook table', () => {
  it('lists every hook point once, with the shape the model gives it', () => {
    // Distinct primes for every dimension, so each number in a shape names its dimension.
    const cfg: BaseConfig = { nLayers: 2, nHeads: 3, dModel: 7, dHead: 11, dMlp: 13, nCtx: 64, dVocab: 50, eps: 1e-5, act: 'gelu_new' };
    const dims: Record<number, string> = { 17: 'batch', 19: 'pos', 3: 'head', 7: 'd_model', 11: 'd_head', 13: 'd_mlp', 1: '1' };
    const rows = new Map<string, string>();
    for (const m of README.matchAll(/^\| `([^`]+)` \| `\[([^\]]+)\]` \|/gm)) {
      expect(rows.has(m[1]), `duplicate row ${m[1]}`).toBe(false);
      rows.set(m[1], m[2]);
    }
    const expected = new Map<string, string>();
    for (const name of allHookNames(cfg)) {
      const generic = name.replace(/^blocks\.\d+\./, 'blocks.{l}.');
      const shape = hookShape(name, cfg, 17, 19).map((n, i) => {
        // Attention patterns are [batch, head, q_pos, k_pos]: both position axes are `pos`.
        if (n === 19 && /hook_(pattern|attn_scores)$/.test(name)) return i === 2 ? 'q_pos' : 'k_pos';
        return dims[n] ?? `?${n}`;
      });
      expected.set(generic, shape.join(', '));
    }
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(expected));
  });
});

describe('README: shell commands', () => {
  it('every command is listed with where it is exercised', () => {
    const cmds = readmeCommands();
    const missing = cmds.filter((c) => !(c in COVERAGE));
    expect(missing, 'README commands with no entry in COVERAGE').toEqual([]);
    const stale = Object.keys(COVERAGE).filter((c) => !cmds.includes(c));
    expect(stale, 'COVERAGE entries no longer in the README').toEqual([]);
  });

  it('the commands marked "CI" appear in .ci/run', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    for (const [cmd, where] of Object.entries(COVERAGE)) {
      if (!where.startsWith('CI:')) continue;
      const key = cmd === 'npm install' ? 'npm ci' : cmd;
      expect(ci, `.ci/run should run: ${cmd}`).toContain(key);
    }
  });

  it('the JSONL examples are valid datasets for their tokenizers', async () => {
    const gpt2 = await loadTokenizer(join(ROOT, 'test', 'fixtures', 'gpt2-tokenizer'));
    const demo = parseJsonlDataset(readFileSync(join(ROOT, 'docs/examples/ioi-gpt2-demo.jsonl'), 'utf8'), gpt2, 'ioi-gpt2-demo.jsonl');
    expect(demo).toHaveLength(8);
    expect(new Set(demo.map((p) => p.cleanIds.length)).size).toBe(1); // one token length
    expect(demo.every((p) => p.cleanIds[0] === 50256)).toBe(true); // BOS first, as TransformerLens prepends it
    // Swap corruption: each corrupt prompt is another pair's clean prompt, and its answer is this pair's wrong token.
    for (const p of demo) expect(demo.find((q) => q.clean === p.corrupt)?.answer).toBe(p.wrong);
  });
});

describe('README: CLI on the embedded model', () => {
  let cwd: string;
  beforeAll(() => {
    cwd = workDir('relp-readme-cli-');
    cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
  });

  it('relp logits', async () => {
    const r = await runReadme(command('npx relp logits'), { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tokens \(\d+\): /);
    expect(r.stdout).toContain('top-5 next tokens:');
  });

  it('relp lrp', async () => {
    const r = await runReadme(command('npx relp lrp'), { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/logit\[" Mary"\] − logit\[" John"\] = -?\d/);
  });

  // Generous limit: about 40 s on two cores with wasm.
  it('relp patch (IOI), relp compare, relp circuit, relp view, in the README order', { timeout: 300_000 }, async () => {
    const patch = await runReadme(command('npx relp patch --task ioi'), { cwd });
    expect(patch.code, patch.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(cwd, 'runs/ioi-16/run.json'), 'utf8')) as { scores: Record<string, Record<string, unknown>>; dataset: { pairs: unknown[] } };
    expect(Object.keys(run.scores).sort()).toEqual(['activation', 'atp', 'atp*', 'relp']);
    expect(Object.keys(run.scores.relp).sort()).toEqual(['attn_out', 'mlp_out', 'resid_pre', 'z']);
    expect(run.dataset.pairs).toHaveLength(16);

    const compare = await runReadme(command('npx relp compare runs/ioi-16'), { cwd });
    expect(compare.code, compare.stderr).toBe(0);
    expect(compare.stdout).toMatch(/relp rules: relp/);
    for (const c of ['resid_pre', 'attn_out', 'mlp_out', 'z']) expect(compare.stdout).toMatch(new RegExp(`^${c}\\s`, 'm'));

    const circuit = await runReadme(command('npx relp circuit --task ioi --n 16 --method eap-relp'), { cwd });
    expect(circuit.code, circuit.stderr).toBe(0);
    expect(existsSync(join(cwd, 'runs/ioi-16/circuit.json'))).toBe(true);
    expect(existsSync(join(cwd, 'runs/ioi-16/faithfulness.json'))).toBe(true);

    // `relp view runs` runs until stopped: port 7878 may be taken on a shared machine, so the test
    // appends `--port 0` (the README's command otherwise unchanged).
    const viewLine = command('npx relp view');
    const child = spawn(process.execPath, [BIN, ...shellWords(viewLine).slice(2), '--port', '0'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((res, rej) => {
        let out = '';
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          const m = /^(http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(out);
          if (m) res(m[1]);
        });
        child.on('close', (code) => rej(new Error(`relp view exited (${code}) before printing a URL`)));
        setTimeout(() => rej(new Error('relp view printed no URL within 60 s')), 60_000);
      });
      for (const page of ['', 'runs/ioi-16', 'runs/ioi-16/circuit', 'api/runs']) {
        const res = await fetch(url + page);
        expect(res.status, `GET /${page}`).toBe(200);
        await res.arrayBuffer();
      }
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('relp circuit --mib-out, then --from-mib on the file it wrote: the same circuit and CPR', { timeout: 300_000 }, async () => {
    const write = await runReadme(command('npx relp circuit --task ioi --n 16 --method eap-ig,eap --mib-out'), { cwd });
    expect(write.code, write.stderr).toBe(0);
    expect(write.stdout).toMatch(/CPR, CMD \(MIB\)/);
    const mib = JSON.parse(readFileSync(join(cwd, 'runs/ioi-mib/eap-ig.json'), 'utf8')) as { edges: Record<string, { in_graph: boolean }> };
    const inGraph = Object.values(mib.edges).filter((e) => e.in_graph).length;
    const read = await runReadme(command('npx relp circuit --task ioi --n 16 --from-mib'), { cwd });
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout).toMatch(new RegExp(`: ${inGraph} in_graph edges, ${inGraph} of \\d+ after dropping dangling ones`));
    const cpr = (dir: string, i: number) => (JSON.parse(readFileSync(join(cwd, dir, 'faithfulness.json'), 'utf8')) as { curves: { mib: { cpr: number } }[] }).curves[i]!.mib.cpr;
    expect(Math.abs(cpr('runs/ioi-mib-read', 0) - cpr('runs/ioi-mib', 0))).toBeLessThan(1e-6);
  });

  it('relp patch --dataset (JSONL)', async () => {
    const r = await runReadme(command('npx relp patch --dataset'), { cwd });
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(cwd, 'runs/jsonl/run.json'), 'utf8')) as { rules: string; dataset: { kind: string } };
    expect(run.rules).toBe('relp-ah');
    expect(run.dataset.kind).toBe('jsonl');
  });
});

describe('README: reproducing the GPT-2 numbers (offline stand-in)', () => {
  it('download → patch → compare → circuit run as written, on a random GPT-2 served by a local hub', { timeout: 300_000 }, async () => {
    // A random GPT-2 (tiny, with the real 50257-token GPT-2 tokenizer), served in the Hub's layout
    // under the README's model id. Larger weights than the default so clean and corrupt differ.
    const cfg: BaseConfig = { nLayers: 2, nHeads: 2, dModel: 16, dHead: 8, dMlp: 64, nCtx: 32, dVocab: 50257, eps: 1e-5, act: 'gelu_new', bosTokenId: 50256, eosTokenId: 50256 };
    const model = makeTmpModelDir({ withTokenizer: true, cfg, stateDict: randomStateDict(cfg, { seed: 5, std: 0.3 }) });
    cleanups.push(model.cleanup);
    const files = readdirSync(model.dir).map((f) => ({ path: f, data: new Uint8Array(readFileSync(join(model.dir, f))) }));
    const hub = await startHubServer({ repoId: 'openai-community/gpt2', files });
    cleanups.push(() => void hub.close());
    const home = mkdtempSync(join(tmpdir(), 'relp-home-'));
    const cwd = workDir('relp-readme-gpt2-');
    cleanups.push(() => rmSync(home, { recursive: true, force: true }), () => rmSync(cwd, { recursive: true, force: true }));
    const env = { HOME: home, HF_ENDPOINT: hub.endpoint, XDG_CACHE_HOME: '', RELP_CACHE_DIR: '' };

    const dl = await runReadme(command('npx relp download'), { cwd, home, env });
    expect(dl.code, dl.stderr).toBe(0);
    const dir = join(home, '.cache/relp/models/openai-community__gpt2');
    expect(dl.stdout.trim()).toBe(dir); // the folder the README's next commands use
    expect(readFileSync(join(dir, 'model.safetensors'))).toEqual(readFileSync(join(model.dir, 'model.safetensors')));

    const patch = await runReadme(command('npx relp patch --model ~/.cache/relp/models/openai-community__gpt2'), { cwd, home, env });
    expect(patch.code, patch.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(cwd, 'runs/gpt2-ioi/run.json'), 'utf8')) as { model: { path: string }; metric: { clean: number; corrupt: number }; dataset: { pairs: unknown[] } };
    expect(run.model.path).toBe(dir);
    expect(run.dataset.pairs).toHaveLength(8);
    // Swap corruption on symmetric pairs: the corrupt mean logit difference is minus the clean one.
    expect(run.metric.corrupt).toBeCloseTo(-run.metric.clean, 4);

    const compare = await runReadme(command('npx relp compare runs/gpt2-ioi'), { cwd, home, env });
    expect(compare.code, compare.stderr).toBe(0);
    expect(compare.stdout).toMatch(/^resid_pre\s/m);

    const circuit = await runReadme(command('npx relp circuit --model ~/.cache/relp/models/openai-community__gpt2'), { cwd, home, env });
    expect(circuit.code, circuit.stderr).toBe(0);
    expect(existsSync(join(cwd, 'runs/gpt2-ioi/circuit.json'))).toBe(true);
  });
});

describe('README: TypeScript examples', () => {
  const examples = codeBlocks(README, 'ts');
  const files: string[] = [];
  beforeAll(() => {
    // Written inside the repo so imports of packages and of ./src resolve as for a user's script
    // at the repository root (test/artifacts is gitignored).
    mkdirSync(ARTIFACTS, { recursive: true });
    examples.forEach((code, i) => {
      const f = join(ARTIFACTS, `example-${i + 1}.ts`);
      writeFileSync(f, toSourceImports(code));
      files.push(f);
    });
  });

  it('there are examples of hooks, patching, runs and circuits, and they import relp as a package', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const code of examples) expect(code).not.toMatch(/from '\.{1,2}\//); // no ./src/... paths: a user has only the package
    for (const api of ['runWithCacheAndGrads', 'attributionPatch', 'runSweep', 'runCircuit']) expect(examples.join('\n')).toContain(api);
  });

  it('type-check under the project tsconfig (strict)', () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    });
    const program = ts.createProgram(files, { ...parsed!.options, noEmit: true });
    const diags = ts.getPreEmitDiagnostics(program).filter((d) => !d.file || files.includes(resolve(d.file.fileName)));
    const text = diags.map((d) => {
      const where = d.file && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(text).toEqual([]);
  });

  it.each(examples.map((_, i) => i + 1))('example %i runs on the embedded model without leaking tensors', async (n) => {
    const before = tf.memory().numTensors;
    const logs: string[] = [];
    const orig = console.log;
    console.log = (...a: unknown[]) => void logs.push(a.map(String).join(' '));
    try {
      await import(pathToFileURL(join(ARTIFACTS, `example-${n}.ts`)).href);
    } finally {
      console.log = orig;
    }
    expect(logs.length).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});
