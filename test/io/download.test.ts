import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FILES, defaultModelDir, downloadModel, type DownloadProgress } from '../../src/io/download.ts';
import { configToHF, type BaseConfig } from '../../src/models/config.ts';
import { randomStateDict, type StateDict } from '../../src/models/state-dict.ts';
import { readSafetensors, readShardedSafetensors, writeSafetensors, writeShardedSafetensors } from '../../src/io/safetensors.ts';
import { loadTokenizer } from '../../src/tokenizer.ts';
import { Command } from 'commander';
import { register } from '../../src/cli/commands/download.ts';
import { startHubServer, type HubRepoFile, type HubServer } from '../helpers/hub-server.ts';
import { fixtureTokenizerDir } from '../helpers/tokenizer-fixtures.ts';

const FIXTURE = new URL('../fixtures/hub/tiny-gpt2/', import.meta.url).pathname;
const REPO = 'relp-test/tiny-gpt2';
const TOKEN = 'hf_test_secret';
const CONFIG_AND_TOKENIZER = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt'];

const cfg: BaseConfig = { nLayers: 1, nHeads: 2, dModel: 16, dHead: 8, dMlp: 64, nCtx: 32, dVocab: 268, eps: 1e-5, act: 'gelu_new', bosTokenId: 267, eosTokenId: 267 };

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

/**
 * Hub layouts of the architectures relp is growing into, with tiny random content: HF config keys,
 * native tensor names, the tokenizer files each repo really has (Pythia and Qwen2 with the real
 * fixture tokenizers; Gemma-2 with the Llama-2 SentencePiece fixture standing in for its own), and
 * files relp must leave alone (tokenizer.model, special_tokens_map.json, pytorch_model.bin).
 */
describe('downloadModel: Pythia, Qwen2 and Gemma-2 repos', () => {
  /** A tiny random tensor (values from a fixed LCG so the bytes are reproducible). */
  function rnd(shape: number[], seed: number): { shape: number[]; data: Float32Array } {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    let x = seed >>> 0;
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      data[i] = x / 2 ** 32 - 0.5;
    }
    return { shape, data };
  }

  interface ArchRepo {
    id: string;
    config: Record<string, unknown>;
    weights: StateDict;
    /** Tokenizer-side files of the real repo (name -> bytes). */
    tokenizerFiles: Record<string, Uint8Array>;
    /** Files the real repo has that relp does not fetch. */
    ignored: string[];
    /** Checks on the downloaded tokenizer. */
    checkTokenizer: (dir: string) => Promise<void>;
  }

  const d = 8;
  const V = 64;
  const fixtureFile = (name: 'pythia' | 'qwen2' | 'llama2', file: string) => readFileSync(join(fixtureTokenizerDir(name), file));

  function repos(): ArchRepo[] {
    let seed = 1;
    const neox: StateDict = new Map([
      ['gpt_neox.embed_in.weight', rnd([V, d], seed++)],
      ['gpt_neox.layers.0.input_layernorm.weight', rnd([d], seed++)],
      ['gpt_neox.layers.0.input_layernorm.bias', rnd([d], seed++)],
      ['gpt_neox.layers.0.attention.query_key_value.weight', rnd([3 * d, d], seed++)],
      ['gpt_neox.layers.0.attention.query_key_value.bias', rnd([3 * d], seed++)],
      ['gpt_neox.layers.0.attention.dense.weight', rnd([d, d], seed++)],
      ['gpt_neox.layers.0.mlp.dense_h_to_4h.weight', rnd([4 * d, d], seed++)],
      ['gpt_neox.layers.0.mlp.dense_4h_to_h.weight', rnd([d, 4 * d], seed++)],
      ['gpt_neox.final_layer_norm.weight', rnd([d], seed++)],
      ['embed_out.weight', rnd([V, d], seed++)],
    ]);
    const llamaLike = (prefix: string, extra: [string, { shape: number[]; data: Float32Array }][]): StateDict =>
      new Map([
        [`${prefix}embed_tokens.weight`, rnd([V, d], seed++)],
        [`${prefix}layers.0.input_layernorm.weight`, rnd([d], seed++)],
        [`${prefix}layers.0.self_attn.q_proj.weight`, rnd([d, d], seed++)],
        [`${prefix}layers.0.self_attn.k_proj.weight`, rnd([d / 2, d], seed++)],
        [`${prefix}layers.0.self_attn.v_proj.weight`, rnd([d / 2, d], seed++)],
        [`${prefix}layers.0.self_attn.o_proj.weight`, rnd([d, d], seed++)],
        [`${prefix}layers.0.mlp.gate_proj.weight`, rnd([2 * d, d], seed++)],
        [`${prefix}layers.0.mlp.up_proj.weight`, rnd([2 * d, d], seed++)],
        [`${prefix}layers.0.mlp.down_proj.weight`, rnd([d, 2 * d], seed++)],
        [`${prefix}norm.weight`, rnd([d], seed++)],
        ...extra,
      ]);
    const qwen = llamaLike('model.', [
      ['model.layers.0.self_attn.q_proj.bias', rnd([d], seed++)],
      ['model.layers.0.self_attn.k_proj.bias', rnd([d / 2], seed++)],
      ['model.layers.0.self_attn.v_proj.bias', rnd([d / 2], seed++)],
    ]);
    const gemma = llamaLike('model.', [
      ['model.layers.0.post_attention_layernorm.weight', rnd([d], seed++)],
      ['model.layers.0.pre_feedforward_layernorm.weight', rnd([d], seed++)],
      ['model.layers.0.post_feedforward_layernorm.weight', rnd([d], seed++)],
    ]);
    const json = (o: unknown) => Buffer.from(JSON.stringify(o, null, 2));
    return [
      {
        id: 'EleutherAI/pythia-70m',
        config: { architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox', hidden_size: d, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 4 * d, vocab_size: V, rotary_pct: 0.25, rotary_emb_base: 10000, use_parallel_residual: true, max_position_embeddings: 32, layer_norm_eps: 1e-5, hidden_act: 'gelu', tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 0 },
        weights: neox,
        tokenizerFiles: { 'tokenizer.json': fixtureFile('pythia', 'tokenizer.json'), 'tokenizer_config.json': fixtureFile('pythia', 'tokenizer_config.json'), 'special_tokens_map.json': json({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>' }) },
        ignored: ['special_tokens_map.json'],
        checkTokenizer: async (dir) => {
          const tok = await loadTokenizer(dir);
          expect(tok.toTokens('Hello world')).toEqual([[12092, 1533]]); // no BOS for GPT-NeoX
        },
      },
      {
        id: 'Qwen/Qwen2-0.5B',
        config: { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: d, num_attention_heads: 2, num_key_value_heads: 1, num_hidden_layers: 1, intermediate_size: 2 * d, vocab_size: V, rope_theta: 1000000, rms_norm_eps: 1e-6, hidden_act: 'silu', max_position_embeddings: 32, tie_word_embeddings: true, torch_dtype: 'bfloat16', bos_token_id: 151643, eos_token_id: 151643 },
        weights: qwen,
        tokenizerFiles: {
          'tokenizer.json': fixtureFile('qwen2', 'tokenizer.json'),
          'tokenizer_config.json': fixtureFile('qwen2', 'tokenizer_config.json'),
          'vocab.json': json({ Hello: 9707, 'Ġworld': 1879 }),
          'merges.txt': Buffer.from('#version: 0.2\nĠ w\n'),
          'generation_config.json': json({ bos_token_id: 151643, eos_token_id: 151643, max_new_tokens: 2048 }),
        },
        ignored: [],
        checkTokenizer: async (dir) => {
          const tok = await loadTokenizer(dir);
          expect(tok.bosTokenId).toBe(151643); // config.json bos_token_id
          expect(tok.toTokens('Hello world')).toEqual([[9707, 1879]]); // no BOS by default
        },
      },
      {
        id: 'google/gemma-2-2b',
        config: { architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2', hidden_size: d, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4, num_hidden_layers: 1, intermediate_size: 2 * d, vocab_size: V, hidden_activation: 'gelu_pytorch_tanh', query_pre_attn_scalar: 4, sliding_window: 16, final_logit_softcapping: 30.0, attn_logit_softcapping: 50.0, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 32, torch_dtype: 'float32', bos_token_id: 2, eos_token_id: 1 },
        weights: gemma,
        tokenizerFiles: {
          // Stand-in SentencePiece tokenizer (Llama-2 fixture); Gemma's own is 17 MB.
          'tokenizer.json': fixtureFile('llama2', 'tokenizer.json'),
          'tokenizer_config.json': fixtureFile('llama2', 'tokenizer_config.json'),
          'tokenizer.model': Buffer.alloc(2048, 3),
          'special_tokens_map.json': json({ bos_token: '<s>', eos_token: '</s>' }),
          'generation_config.json': json({ bos_token_id: 2, eos_token_id: 1, cache_implementation: 'hybrid' }),
        },
        ignored: ['tokenizer.model', 'special_tokens_map.json'],
        checkTokenizer: async (dir) => {
          const tok = await loadTokenizer(dir);
          expect(tok.prependBos).toBe(true); // SentencePiece template adds BOS
          expect(tok.toTokens('This is a test')[0].slice(1)).toEqual([910, 338, 263, 1243]);
        },
      },
    ];
  }

  for (const layout of ['sharded', 'single'] as const) {
    for (const repo of repos()) {
      it(`${repo.id} (${layout} safetensors): every needed file arrives byte for byte and verifies; nothing else is fetched`, async () => {
        const src = join(work, `src-${counter++}`);
        let weightFiles: HubRepoFile[];
        if (layout === 'sharded') {
          const { shards, indexPath } = writeShardedSafetensors(src, repo.weights, { maxShardBytes: 1_500 });
          expect(shards.length).toBeGreaterThan(1);
          weightFiles = [
            { path: 'model.safetensors.index.json', data: readFileSync(indexPath) },
            ...shards.map((p) => ({ path: p.slice(src.length + 1), data: readFileSync(p) })),
          ];
        } else {
          writeSafetensors(join(work, `w-${counter}.safetensors`), repo.weights);
          weightFiles = [{ path: 'model.safetensors', data: readFileSync(join(work, `w-${counter}.safetensors`)) }];
        }
        const files: HubRepoFile[] = [
          { path: 'config.json', data: Buffer.from(JSON.stringify(repo.config, null, 2)) },
          ...Object.entries(repo.tokenizerFiles).map(([path, data]) => ({ path, data, lfs: path === 'tokenizer.model' })),
          ...weightFiles,
          { path: 'pytorch_model.bin', data: Buffer.alloc(4096, 5), lfs: true },
          { path: 'README.md', data: Buffer.from(`# ${repo.id}\n`) },
        ];
        const hub = await serve({ repoId: repo.id, files });
        const dir = freshDir();
        const res = await downloadModel(repo.id, { dir, endpoint: hub.endpoint, progress: false });

        const tokenizerWanted = Object.keys(repo.tokenizerFiles).filter((f) => !repo.ignored.includes(f));
        const wanted = [...CONFIG_FILES.filter((f) => f === 'config.json' || tokenizerWanted.includes(f)), ...weightFiles.map((f) => f.path)];
        expect(res.files.map((f) => f.name)).toEqual(wanted);
        expect(res.files.every((f) => f.status === 'downloaded')).toBe(true);
        expect(readdirSync(dir).sort()).toEqual([...wanted].sort());
        for (const f of wanted) expect(Buffer.compare(readFileSync(join(dir, f)), files.find((x) => x.path === f)!.data), f).toBe(0);
        for (const w of weightFiles.filter((f) => f.path.endsWith('.safetensors'))) {
          expect(res.files.find((f) => f.name === w.path)!.sha256, w.path).toBe(hub.sha256(w.path));
        }
        const back = layout === 'sharded' ? readShardedSafetensors(join(dir, 'model.safetensors.index.json')).tensors : readSafetensors(join(dir, 'model.safetensors'));
        expectSameTensors(back, repo.weights);
        const fetched = hub.requests.filter((r) => r.method === 'GET').map((r) => r.path);
        for (const f of [...repo.ignored, 'pytorch_model.bin', 'README.md']) expect(fetched.some((p) => p.endsWith(`/${f}`)), f).toBe(false);
        await repo.checkTokenizer(dir);

        // A second run finds everything complete.
        const again = await downloadModel(repo.id, { dir, endpoint: hub.endpoint, progress: false });
        expect(again.files.every((f) => f.status === 'skipped')).toBe(true);
      });
    }
  }
});

describe('downloadModel: clean-up after a failure (issue 16)', () => {
  it('leaves no empty folders behind when the repo does not exist, under a fresh cache', async () => {
    const hub = await serve();
    const cache = join(work, `cache-${counter++}`);
    vi.stubEnv('RELP_CACHE_DIR', cache);
    await expect(downloadModel('relp-test/nope', { endpoint: hub.endpoint, progress: false })).rejects.toThrow(/not found/);
    expect(existsSync(defaultModelDir('relp-test/nope'))).toBe(false);
    expect(existsSync(cache)).toBe(false);
  });

  it('removes only what it created: an existing target folder and its files stay', async () => {
    const hub = await serve();
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    await expect(downloadModel('relp-test/nope', { dir, endpoint: hub.endpoint, progress: false })).rejects.toThrow(/not found/);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });

  it('keeps the config files it fetched, and their folder, when the repo turns out to have no safetensors', async () => {
    const hub = await serve({ files: repoFiles.filter((f) => f.path !== 'model.safetensors') });
    const dir = join(work, `nested-${counter++}`, 'a', 'b');
    await expect(downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false })).rejects.toThrow(/has no safetensors weights/);
    // The config files it fetched are kept (a rerun skips them), so their folder stays.
    expect(readdirSync(dir).sort()).toEqual([...CONFIG_AND_TOKENIZER].sort());
  });

  it('keeps the partial file (and so its folder) of an interrupted download for the resume', async () => {
    const hub = await serve();
    const dir = join(work, `fresh-${counter++}`, 'model');
    hub.cutNext.set('model.safetensors', 1_000);
    await expect(downloadModel(REPO, { dir, endpoint: hub.endpoint, progress: false })).rejects.toThrow(/interrupted/);
    expect(existsSync(join(dir, 'model.safetensors.incomplete'))).toBe(true);
  });
});
