import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultModelDir, downloadModel, type DownloadProgress } from '../../src/io/download.ts';
import { configToHF, type GPT2Config } from '../../src/models/config.ts';
import { randomStateDict, type StateDict } from '../../src/models/state-dict.ts';
import { readSafetensors, readShardedSafetensors, writeSafetensors, writeShardedSafetensors } from '../../src/io/safetensors.ts';
import { loadTokenizer } from '../../src/tokenizer.ts';
import { Command } from 'commander';
import { register } from '../../src/cli/commands/download.ts';
import { startHubServer, type HubRepoFile, type HubServer } from '../helpers/hub-server.ts';

const FIXTURE = new URL('../fixtures/hub/tiny-gpt2/', import.meta.url).pathname;
const REPO = 'relp-test/tiny-gpt2';
const TOKEN = 'hf_test_secret';
const CONFIG_AND_TOKENIZER = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt'];

const cfg: GPT2Config = { nLayers: 1, nHeads: 2, dModel: 16, dHead: 8, dMlp: 64, nCtx: 32, dVocab: 268, eps: 1e-5, act: 'gelu_new', bosTokenId: 267, eosTokenId: 267 };

let work: string;
let sd: StateDict;
let repoFiles: HubRepoFile[];
let counter = 0;
const servers: HubServer[] = [];

/** A fresh empty target directory per test. */
function freshDir(): string {
  return join(work, `dl-${counter++}`);
}

async function serve(opts: Partial<Parameters<typeof startHubServer>[0]> = {}): Promise<HubServer> {
  const s = await startHubServer({ repoId: REPO, files: repoFiles, ...opts });
  servers.push(s);
  return s;
}

function fileBytes(name: string): Uint8Array {
  return repoFiles.find((f) => f.path === name)!.data;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'relp-download-'));
  sd = randomStateDict(cfg, { seed: 3 });
  const st = join(work, 'model.safetensors');
  writeSafetensors(st, sd);
  repoFiles = [
    { path: 'config.json', data: Buffer.from(JSON.stringify(configToHF(cfg), null, 2)) },
    ...['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'README.md'].map((f) => ({
      path: f,
      data: readFileSync(join(FIXTURE, f)),
    })),
    { path: 'model.safetensors', data: readFileSync(st) },
    // Present in real repos, never fetched by relp.
    { path: 'pytorch_model.bin', data: Buffer.alloc(4096, 7), lfs: true },
    { path: 'onnx/decoder_model.onnx', data: Buffer.alloc(1024, 9), lfs: true },
  ];
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

function expectSameTensors(a: StateDict, b: StateDict): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of b) {
    expect(a.get(name)!.shape, name).toEqual(t.shape);
    expect(Array.from(a.get(name)!.data), name).toEqual(Array.from(t.data));
  }
}

describe('downloadModel', () => {
  it('fetches config, tokenizer files and safetensors weights, nothing else', async () => {
    const hub = await serve();
    const dir = freshDir();
    const progress: DownloadProgress[] = [];
    const res = await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false, onProgress: (p) => progress.push(p) });

    const wanted = [...CONFIG_AND_TOKENIZER, 'model.safetensors'];
    expect(res.files.map((f) => f.name)).toEqual(wanted);
    expect(res.files.every((f) => f.status === 'downloaded')).toBe(true);
    expect(readdirSync(dir).sort()).toEqual([...wanted].sort());
    for (const f of wanted) expect(Buffer.compare(readFileSync(join(dir, f)), fileBytes(f)), f).toBe(0);
    expect(res.files.find((f) => f.name === 'model.safetensors')!.sha256).toBe(hub.sha256('model.safetensors'));

    // The weights read back equal the generated state dict; the tokenizer loads from the dir.
    expectSameTensors(readSafetensors(join(dir, 'model.safetensors')), sd);
    const vocab = JSON.parse(readFileSync(join(FIXTURE, 'vocab.json'), 'utf8')) as Record<string, number>;
    const tok = await loadTokenizer(dir);
    expect(tok.encode(' Mary John the')).toEqual([vocab['ĠMary'], vocab['ĠJohn'], vocab['Ġthe']]);
    expect(tok.bosTokenId).toBe(267);

    // Progress ends at each file's size, and bytes never go backwards.
    const st = progress.filter((p) => p.file === 'model.safetensors');
    expect(st.at(-1)!.bytes).toBe(fileBytes('model.safetensors').length);
    expect(st.at(-1)!.total).toBe(fileBytes('model.safetensors').length);
    for (let i = 1; i < st.length; i++) expect(st[i].bytes).toBeGreaterThanOrEqual(st[i - 1].bytes);

    // No token configured: nothing carries Authorization.
    expect(hub.requests.every((r) => r.authorization === undefined)).toBe(true);
    expect(hub.requests.some((r) => r.path.includes('pytorch_model.bin') || r.path.includes('onnx'))).toBe(false);
  });

  it('skips files that are already complete (sha256 for LFS, git blob sha1 otherwise)', async () => {
    const hub = await serve();
    const dir = freshDir();
    await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false });
    hub.requests.length = 0;
    const again = await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false });
    expect(again.files.every((f) => f.status === 'skipped')).toBe(true);
    expect(hub.requests.filter((r) => r.method === 'GET' && !r.path.startsWith('/api/'))).toEqual([]);

    // A locally modified small file is fetched again.
    writeFileSync(join(dir, 'config.json'), '{"tampered": true}');
    const third = await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false });
    expect(third.files.find((f) => f.name === 'config.json')!.status).toBe('downloaded');
    expect(Buffer.compare(readFileSync(join(dir, 'config.json')), fileBytes('config.json'))).toBe(0);
  });

  it('resumes an interrupted download with a Range request', async () => {
    const hub = await serve();
    const dir = freshDir();
    const total = fileBytes('model.safetensors').length;
    hub.cutNext.set('model.safetensors', 10_000);
    await expect(downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false })).rejects.toThrow(
      /download of model\.safetensors was interrupted .*run the download again to resume/,
    );
    const partial = join(dir, 'model.safetensors.incomplete');
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    const have = statSync(partial).size;
    expect(have).toBe(10_000);
    expect(Buffer.compare(readFileSync(partial), fileBytes('model.safetensors').subarray(0, have))).toBe(0);

    hub.requests.length = 0;
    const progress: DownloadProgress[] = [];
    const res = await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false, onProgress: (p) => progress.push(p) });
    const st = res.files.find((f) => f.name === 'model.safetensors')!;
    expect(st.status).toBe('resumed');
    const gets = hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET');
    expect(gets).toHaveLength(1);
    expect(gets[0].range).toBe(`bytes=${have}-`);
    expect(progress.filter((p) => p.file === 'model.safetensors')[0].bytes).toBeGreaterThan(have);
    expect(statSync(join(dir, 'model.safetensors')).size).toBe(total);
    expect(Buffer.compare(readFileSync(join(dir, 'model.safetensors')), fileBytes('model.safetensors'))).toBe(0);
    expect(existsSync(partial)).toBe(false);
  });

  it('starts over when the server ignores Range', async () => {
    const hub = await serve();
    const dir = freshDir();
    hub.cutNext.set('model.safetensors', 5_000);
    await expect(downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false })).rejects.toThrow(/interrupted/);
    hub.ignoreRange = true;
    const res = await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false });
    expect(res.files.find((f) => f.name === 'model.safetensors')!.status).toBe('downloaded');
    expect(Buffer.compare(readFileSync(join(dir, 'model.safetensors')), fileBytes('model.safetensors'))).toBe(0);
  });

  it('fails on a sha256 mismatch and deletes the corrupt bytes so a retry starts clean', async () => {
    const hub = await serve();
    const dir = freshDir();
    hub.corrupt.add('model.safetensors');
    const sha = hub.sha256('model.safetensors');
    await expect(downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false })).rejects.toThrow(
      new RegExp(`model\\.safetensors: sha256 mismatch — expected ${sha}, got [0-9a-f]{64}`),
    );
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    expect(existsSync(join(dir, 'model.safetensors.incomplete'))).toBe(false);

    hub.corrupt.clear();
    const res = await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false });
    expect(res.files.find((f) => f.name === 'model.safetensors')!.status).toBe('downloaded');
  });

  it('uses the X-Linked-Etag sha256 when the endpoint has no listing API', async () => {
    const hub = await serve({ noApi: true });
    const dir = freshDir();
    const res = await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false });
    expect(res.files.map((f) => f.name)).toEqual([...CONFIG_AND_TOKENIZER, 'model.safetensors']);
    expect(Buffer.compare(readFileSync(join(dir, 'model.safetensors')), fileBytes('model.safetensors'))).toBe(0);

    hub.corrupt.add('model.safetensors');
    await expect(downloadModel(REPO, { dir: freshDir(), endpoint: hub.endpoint, progress: false })).rejects.toThrow(/sha256 mismatch/);
  });

  it('401 without a token names HF_TOKEN; with HF_TOKEN it sends a Bearer token to the hub only', async () => {
    const hub = await serve({ token: TOKEN });
    await expect(downloadModel(REPO, { dir: freshDir(), endpoint: hub.endpoint, progress: false })).rejects.toThrow(
      /401 .*private, gated or nonexistent\. Set HF_TOKEN/,
    );
    await expect(downloadModel(REPO, { dir: freshDir(), endpoint: hub.endpoint, token: 'wrong', progress: false })).rejects.toThrow(
      /token in HF_TOKEN was refused/,
    );

    hub.requests.length = 0;
    vi.stubEnv('HF_TOKEN', TOKEN);
    const dir = freshDir();
    await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false });
    expect(Buffer.compare(readFileSync(join(dir, 'model.safetensors')), fileBytes('model.safetensors'))).toBe(0);
    const hubReqs = hub.requests.filter((r) => r.server === 'hub');
    const cdnReqs = hub.requests.filter((r) => r.server === 'cdn');
    expect(hubReqs.length).toBeGreaterThan(0);
    expect(hubReqs.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(cdnReqs.length).toBeGreaterThan(0);
    expect(cdnReqs.every((r) => r.authorization === undefined)).toBe(true);
  });

  it('honours HF_ENDPOINT', async () => {
    const hub = await serve();
    vi.stubEnv('HF_ENDPOINT', `${hub.endpoint}/`);
    const dir = freshDir();
    const res = await downloadModel(REPO, { dir, progress: false });
    expect(res.files).toHaveLength(7);
    expect(hub.requests.some((r) => r.path.startsWith(`/api/models/${REPO}/revision/main`))).toBe(true);
  });

  it('reports a missing repo or revision', async () => {
    const hub = await serve();
    await expect(downloadModel('relp-test/nope', { dir: freshDir(), endpoint: hub.endpoint, progress: false })).rejects.toThrow(
      /relp-test\/nope at revision "main" not found .*check the model id and revision/,
    );
    await expect(downloadModel(REPO, { dir: freshDir(), endpoint: hub.endpoint, revision: 'v9', progress: false })).rejects.toThrow(
      /revision "v9" not found/,
    );
  });

  it('reports an unreachable endpoint and mentions HF_ENDPOINT', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    await expect(downloadModel(REPO, { dir: freshDir(), endpoint: `http://127.0.0.1:${port}`, progress: false })).rejects.toThrow(
      /cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\).*set HF_ENDPOINT/,
    );
  });

  it('refuses a repo without safetensors weights, naming what it has', async () => {
    const hub = await serve({ files: repoFiles.filter((f) => f.path !== 'model.safetensors') });
    await expect(downloadModel(REPO, { dir: freshDir(), endpoint: hub.endpoint, progress: false })).rejects.toThrow(
      /has no safetensors weights .*only has pytorch_model\.bin, onnx\/decoder_model\.onnx/,
    );
  });

  it('downloads a sharded checkpoint through its index', async () => {
    const shardDir = join(work, `shards-${counter++}`);
    const { shards, indexPath } = writeShardedSafetensors(shardDir, sd, { maxShardBytes: 8_000 });
    expect(shards.length).toBeGreaterThan(1);
    const files: HubRepoFile[] = [
      ...repoFiles.filter((f) => f.path !== 'model.safetensors'),
      { path: 'model.safetensors.index.json', data: readFileSync(indexPath) },
      ...shards.map((p) => ({ path: p.slice(shardDir.length + 1), data: readFileSync(p) })),
    ];
    const hub = await serve({ files });
    const dir = freshDir();
    const res = await downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false });
    const shardNames = shards.map((p) => p.slice(shardDir.length + 1));
    expect(res.files.map((f) => f.name)).toEqual([...CONFIG_AND_TOKENIZER, 'model.safetensors.index.json', ...shardNames]);
    expectSameTensors(readShardedSafetensors(join(dir, 'model.safetensors.index.json')).tensors, sd);
  });

  it('fetches an explicit file list', async () => {
    const hub = await serve();
    const dir = freshDir();
    const res = await downloadModel(REPO, { dir, endpoint: hub.endpoint, files: ['README.md'], progress: false });
    expect(res.files.map((f) => f.name)).toEqual(['README.md']);
    expect(readdirSync(dir)).toEqual(['README.md']);
    await expect(downloadModel(REPO, { dir, endpoint: hub.endpoint, files: ['missing.txt'], progress: false })).rejects.toThrow(
      /missing\.txt is not a file of relp-test\/tiny-gpt2/,
    );
    await expect(downloadModel(REPO, { dir, endpoint: hub.endpoint, files: ['../escape'], progress: false })).rejects.toThrow(
      /unsafe file name "\.\.\/escape"/,
    );
  });

  it('rejects malformed model ids and endpoints', async () => {
    await expect(downloadModel('a/b/c', { progress: false })).rejects.toThrow(/invalid Hugging Face model id "a\/b\/c"/);
    await expect(downloadModel('gpt2', { endpoint: 'not a url', dir: freshDir(), progress: false })).rejects.toThrow(
      /invalid hub endpoint "not a url"/,
    );
  });
});

describe('progress bar', () => {
  it('draws on stderr only, for large files only', async () => {
    const big = new Uint8Array(300_000).map((_, i) => (i * 31) % 256);
    const hub = await serve({ files: [repoFiles[0], { path: 'model.safetensors', data: big }] });
    const out: string[] = [];
    const err: string[] = [];
    const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
    try {
      await downloadModel(REPO, { dir: freshDir(), endpoint: hub.endpoint, progress: true });
    } finally {
      so.mockRestore();
      se.mockRestore();
    }
    expect(out).toEqual([]);
    const text = err.join('');
    expect(text).toMatch(/model\.safetensors \[.*\] 100% \| 293\.0 KiB\/293\.0 KiB/);
    expect(text).not.toMatch(/config\.json \[/);
  });
});

describe('defaultModelDir', () => {
  it('lives under RELP_CACHE_DIR, else XDG_CACHE_HOME/relp, with the revision appended unless main', () => {
    expect(defaultModelDir('openai-community/gpt2', 'main', { RELP_CACHE_DIR: '/c' })).toBe('/c/models/openai-community__gpt2');
    expect(defaultModelDir('gpt2', 'refs/pr/1', { XDG_CACHE_HOME: '/x' })).toBe('/x/relp/models/gpt2@refs_pr_1');
  });
});

describe('relp download (CLI command)', () => {
  it('prints only the model dir on stdout, file lines on stderr, and JSON with --json', async () => {
    const hub = await serve();
    const dir = freshDir();
    const out: string[] = [];
    const err: string[] = [];
    const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
    try {
      const program = new Command().exitOverride();
      register(program);
      await program.parseAsync(['node', 'relp', 'download', REPO, '--dir', dir, '--endpoint', hub.endpoint, '--no-progress']);
      expect(out.join('')).toBe(`${dir}\n`);
      expect(err.join('')).toMatch(/downloaded +model\.safetensors \(\d+ bytes\)/);

      out.length = 0;
      const program2 = new Command().exitOverride();
      register(program2);
      await program2.parseAsync(['node', 'relp', 'download', REPO, '--dir', dir, '--endpoint', hub.endpoint, '--json']);
      const res = JSON.parse(out.join('')) as { dir: string; files: { name: string; status: string }[] };
      expect(res.dir).toBe(dir);
      expect(res.files.map((f) => f.status)).toEqual(Array(7).fill('skipped'));
    } finally {
      so.mockRestore();
      se.mockRestore();
    }
  });
});
