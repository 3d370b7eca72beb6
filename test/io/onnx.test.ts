import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/models/checkpoint.ts';
import type { BaseConfig } from '../../src/models/config.ts';
import { canonicalParamName, moduleOfNode, readGpt2Onnx, readGpt2OnnxBytes } from '../../src/io/onnx-read.ts';
import { buildGpt2Onnx, writeGpt2Onnx } from '../../src/io/onnx-write.ts';
import { readSafetensors, roundThrough } from '../../src/io/safetensors.ts';
import { randomStateDict, type StateDict } from '../../src/models/state-dict.ts';
import { naiveGpt2 } from '../helpers/naive-gpt2.ts';
import { TINY_CONFIG } from '../helpers/tmp-model.ts';
import { PYTHON, torchAvailable } from '../helpers/torch-reference.ts';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type NodeProto = onnxProto.onnx.INodeProto;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'relp-onnx-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Larger-than-GPT-2 init so logits are O(1) and a 1e-4 agreement means something. */
function bigRandom(cfg: BaseConfig, seed: number): StateDict {
  return randomStateDict(cfg, { seed, std: 0.3, biasStd: 0.2, lnGainStd: 0.3 });
}

async function ortLogits(path: string, batch: number[][]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(path);
  const ids = BigInt64Array.from(batch.flat().map((t) => BigInt(t)));
  const out = await session.run({ input_ids: new ort.Tensor('int64', ids, [batch.length, batch[0].length]) });
  await session.release();
  return { data: out.logits.data as Float32Array, dims: out.logits.dims };
}

function randomTokens(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  });
}

function expectSameStateDict(got: StateDict, want: StateDict, skip: string[] = []): void {
  const keys = [...got.keys()].filter((k) => !skip.includes(k)).sort();
  expect(keys).toEqual([...want.keys()].sort());
  for (const [k, t] of want) {
    const g = got.get(k)!;
    expect(g.shape, k).toEqual(t.shape);
    // Bit-for-bit: compare the raw float32 bit patterns.
    expect(new Uint32Array(g.data.buffer, g.data.byteOffset, g.data.length), k).toEqual(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
  }
}

describe('writeGpt2Onnx runs in ONNX Runtime and agrees with the naive float64 GPT-2', () => {
  const cases: { name: string; cfg: BaseConfig; anonymous: boolean }[] = [
    { name: 'gelu_new, named initializers', cfg: TINY_CONFIG, anonymous: false },
    { name: 'gelu (erf), anonymous initializers', cfg: { ...TINY_CONFIG, act: 'gelu', nLayers: 3, nHeads: 4, dModel: 16, dHead: 4, dMlp: 24, eps: 1e-3 }, anonymous: true },
  ];
  for (const { name, cfg, anonymous } of cases) {
    it(name, async () => {
      const sd = bigRandom(cfg, 11);
      const path = join(dir, `parity-${anonymous}.onnx`);
      writeGpt2Onnx(path, cfg, sd, { anonymousInitializers: anonymous });
      // Dynamic shapes: full context with batch 2, then a short batch of 1 on the same file.
      for (const batch of [
        [randomTokens(cfg.nCtx, cfg.dVocab, 1), randomTokens(cfg.nCtx, cfg.dVocab, 2)],
        [randomTokens(3, cfg.dVocab, 3)],
      ]) {
        const { data, dims } = await ortLogits(path, batch);
        const P = batch[0].length;
        expect(dims).toEqual([batch.length, P, cfg.dVocab]);
        let maxDiff = 0;
        let maxAbs = 0;
        batch.forEach((tokens, b) => {
          const ref = naiveGpt2(cfg, sd, tokens).logits;
          for (let p = 0; p < P; p++) {
            for (let v = 0; v < cfg.dVocab; v++) {
              maxDiff = Math.max(maxDiff, Math.abs(data[(b * P + p) * cfg.dVocab + v] - ref[p][v]));
              maxAbs = Math.max(maxAbs, Math.abs(ref[p][v]));
            }
          }
        });
        expect(maxAbs).toBeGreaterThan(0.5); // logits are not trivially small
        expect(maxDiff).toBeLessThan(1e-4);
      }
    });
  }
});

describe('readGpt2Onnx recovers the exported weights bit for bit', () => {
  const cfg = TINY_CONFIG;
  const sd = randomStateDict(cfg, { seed: 5 });

  it('named initializers (raw_data)', () => {
    const path = join(dir, 'named.onnx');
    writeGpt2Onnx(path, cfg, sd);
    const r = readGpt2Onnx(path);
    expectSameStateDict(r.tensors, sd);
    expect(r.sources.get('h.1.attn.c_attn.weight')).toMatchObject({ initializer: 'transformer.h.1.attn.c_attn.weight', via: 'name' });
    expect(r.unmapped).toEqual([]);
  });

  it('anonymous initializers mapped through their consumer nodes (float_data)', () => {
    const bytes = buildGpt2Onnx(cfg, sd, { anonymousInitializers: true, floatData: true });
    const model = onnx.ModelProto.decode(bytes);
    const inits = model.graph!.initializer!;
    expect(inits.every((t) => t.name!.startsWith('onnx::'))).toBe(true);
    expect(inits.every((t) => t.rawData!.length === 0 && t.floatData!.length > 0)).toBe(true);
    const r = readGpt2OnnxBytes(bytes);
    // The tied unembedding comes back too, as a transposed copy equal to wte.
    expectSameStateDict(r.tensors, sd, ['lm_head.weight']);
    expect(r.tensors.get('lm_head.weight')!.data).toEqual(sd.get('wte.weight')!.data);
    expect(r.sources.get('lm_head.weight')).toMatchObject({ via: 'node', node: '/lm_head/MatMul', transposed: true });
    expect(r.sources.get('h.0.ln_2.bias')).toMatchObject({ via: 'node', node: '/transformer/h.0/ln_2/Add_1' });
    expect(r.sources.get('h.1.mlp.c_proj.weight')).toMatchObject({ via: 'node', node: '/transformer/h.1/mlp/c_proj/MatMul' });
  });
});

// --- Hand-built graphs in other export styles ------------------------------------------------

function f32(name: string, dims: number[], values: number[], asFloatData = false): TensorProto {
  const data = Float32Array.from(values);
  return asFloatData
    ? { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, floatData: Array.from(data) }
    : { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer) };
}

function node(name: string, opType: string, input: string[], output: string[], attribute: onnxProto.onnx.IAttributeProto[] = []): NodeProto {
  return { name, opType, input, output, attribute };
}

function modelBytes(nodes: NodeProto[], initializer: TensorProto[]): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: nodes, initializer, input: [], output: [] },
  }).finish();
}

describe('readGpt2OnnxBytes on hand-built graphs', () => {
  it('follows Gemm (transB), LayerNormalization, Identity and Constant nodes; decodes FLOAT16 both ways', () => {
    const DT = onnx.TensorProto.DataType;
    // Binary16 bits: 1.0 = 0x3C00, -2 = 0xC000, 0.5 = 0x3800, 0.25 = 0x3400
    const halfRaw = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x3400]).buffer);
    const nodes: NodeProto[] = [
      // torch-style dedup: the h.1 LN weight is an Identity of the h.0 one.
      node('', 'Identity', ['transformer.h.0.ln_1.weight'], ['transformer.h.1.ln_1.weight']),
      node('/transformer/h.0/ln_1/LayerNormalization', 'LayerNormalization', ['x', 'transformer.h.0.ln_1.weight', 'onnx::LN_b'], ['y']),
      // Gemm with a transposed weight [out=3, in=2] -> canonical [in, out].
      node('/transformer/h.0/attn/c_attn/Gemm', 'Gemm', ['y', 'onnx::Gemm_7', 'onnx::Gemm_8'], ['z'], [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }]),
      // A weight held by a Constant node and reached through two Identity hops.
      node('/transformer/h.0/mlp/c_fc/Constant', 'Constant', [], ['cst'], [
        { name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: f32('', [2, 2], [1, 2, 3, 4]) },
      ]),
      node('/x/Identity', 'Identity', ['cst'], ['cst_id']),
      node('/x/Identity_1', 'Identity', ['cst_id'], ['cst_id2']),
      node('/transformer/h.0/mlp/c_fc/MatMul', 'MatMul', ['z', 'cst_id2'], ['m']),
      // Bias added on the left; FLOAT16 in raw_data.
      node('/transformer/h.0/mlp/c_fc/Add', 'Add', ['onnx::Add_9', 'm'], ['m2']),
      // FLOAT16 via int32_data, consumed by a decomposed LN's Mul; the eps scalar must be ignored.
      node('/transformer/ln_f/Add', 'Add', ['m2', 'eps'], ['e']),
      node('/transformer/ln_f/Mul', 'Mul', ['e', 'onnx::Mul_10'], ['o']),
      // An unrelated float tensor in a non-parameter module stays unmapped.
      node('/transformer/h.0/attn/Mul', 'Mul', ['o', 'onnx::Mul_11'], ['o2']),
    ];
    const inits: TensorProto[] = [
      f32('transformer.h.0.ln_1.weight', [2], [1.5, 2.5]),
      f32('onnx::LN_b', [2], [0.1, 0.2], true),
      f32('onnx::Gemm_7', [3, 2], [1, 2, 3, 4, 5, 6]),
      f32('onnx::Gemm_8', [3], [7, 8, 9]),
      { name: 'onnx::Add_9', dims: [2], dataType: DT.FLOAT16, rawData: halfRaw.subarray(0, 4) },
      { name: 'eps', dims: [], dataType: DT.FLOAT, floatData: [1e-5] },
      { name: 'onnx::Mul_10', dims: [2], dataType: DT.FLOAT16, int32Data: [0x3800, 0x3400] },
      f32('onnx::Mul_11', [2], [9, 9]),
    ];
    const r = readGpt2OnnxBytes(modelBytes(nodes, inits));
    const got = Object.fromEntries([...r.tensors].map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.data) }]));
    expect(got).toEqual({
      'h.0.ln_1.weight': { shape: [2], data: [1.5, 2.5] },
      'h.1.ln_1.weight': { shape: [2], data: [1.5, 2.5] },
      'h.0.ln_1.bias': { shape: [2], data: [Math.fround(0.1), Math.fround(0.2)] },
      'h.0.attn.c_attn.weight': { shape: [2, 3], data: [1, 3, 5, 2, 4, 6] },
      'h.0.attn.c_attn.bias': { shape: [3], data: [7, 8, 9] },
      'h.0.mlp.c_fc.weight': { shape: [2, 2], data: [1, 2, 3, 4] },
      'h.0.mlp.c_fc.bias': { shape: [2], data: [1, -2] },
      'ln_f.weight': { shape: [2], data: [0.5, 0.25] },
    });
    expect(r.sources.get('h.1.ln_1.weight')).toMatchObject({ initializer: 'transformer.h.0.ln_1.weight', via: 'name' });
    expect(r.sources.get('h.0.mlp.c_fc.weight')).toMatchObject({ initializer: 'cst', via: 'node' });
    expect(r.unmapped).toEqual([{ name: 'onnx::Mul_11', shape: [2] }]);
  });

  it('reads external data files relative to the model', () => {
    const sub = join(dir, 'ext');
    rmSync(sub, { recursive: true, force: true });
    writeFileSync(join(dir, 'weights.bin'), Buffer.from(new Float32Array([0, 0, 3, 4]).buffer));
    const t: TensorProto = {
      name: 'transformer.ln_f.bias',
      dims: [2],
      dataType: onnx.TensorProto.DataType.FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: 'weights.bin' },
        { key: 'offset', value: '8' },
        { key: 'length', value: '8' },
      ],
    };
    const path = join(dir, 'ext.onnx');
    writeFileSync(path, modelBytes([], [t]));
    expect(Array.from(readGpt2Onnx(path).tensors.get('ln_f.bias')!.data)).toEqual([3, 4]);
    const missing = { ...t, externalData: [{ key: 'location', value: 'nope.bin' }] };
    writeFileSync(path, modelBytes([], [missing]));
    expect(() => readGpt2Onnx(path)).toThrow(/external data file "nope\.bin" for tensor "transformer\.ln_f\.bias" is missing/);
  });

  it('rejects two different tensors feeding one parameter, wrong data sizes and non-ONNX bytes', () => {
    const two = modelBytes(
      [node('/transformer/h.0/attn/c_proj/Add', 'Add', ['a', 'onnx::Add_1'], ['b']), node('/transformer/h.0/attn/c_proj/Add_1', 'Add', ['b', 'onnx::Add_2'], ['c'])],
      [f32('onnx::Add_1', [2], [1, 2]), f32('onnx::Add_2', [2], [3, 4])],
    );
    expect(() => readGpt2OnnxBytes(two, '.', 'm.onnx')).toThrow(/m\.onnx: parameter "h\.0\.attn\.c_proj\.bias" is fed by two different tensors/);
    const short = modelBytes([], [{ ...f32('transformer.wte.weight', [2, 2], [1, 2, 3]) }]);
    expect(() => readGpt2OnnxBytes(short, '.', 'm.onnx')).toThrow(/m\.onnx: tensor "transformer\.wte\.weight" \[2, 2\] needs 16 bytes of data but holds 12/);
    expect(() => readGpt2OnnxBytes(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), '.', 'junk.onnx')).toThrow(/junk\.onnx: not a valid ONNX model/);
  });

  it('parses module paths and parameter names', () => {
    expect(moduleOfNode('/transformer/h.11/attn/c_attn/MatMul')).toBe('h.11.attn.c_attn');
    expect(moduleOfNode('/h.0/mlp/c_fc/MatMul')).toBe('h.0.mlp.c_fc');
    expect(moduleOfNode('/lm_head/MatMul')).toBe('lm_head');
    expect(moduleOfNode('/transformer/h.0/attn/MatMul')).toBeUndefined();
    expect(moduleOfNode('/transformer/h.0/mlp/act/Mul')).toBeUndefined();
    expect(moduleOfNode('MatMul_12')).toBeUndefined();
    expect(canonicalParamName('transformer.h.3.mlp.c_proj.bias')).toBe('h.3.mlp.c_proj.bias');
    expect(canonicalParamName('wpe.weight')).toBe('wpe.weight');
    expect(canonicalParamName('lm_head.weight')).toBe('lm_head.weight');
    expect(canonicalParamName('transformer.h.0.attn.bias')).toBeUndefined();
    expect(canonicalParamName('onnx::MatMul_3')).toBeUndefined();
  });
});

// --- A real exporter: torch.onnx (when /usr/bin/python3 has torch) ----------------------------

/**
 * Builds a GPT-2 with HF module names in PyTorch (Conv1D via addmm, tied lm_head, bool causal
 * buffer), exports it with torch.onnx (opset 17), and writes its state dict as safetensors with a
 * hand-written numpy writer (F32 with `transformer.` prefix and buffers, plus F16 / BF16 copies
 * rounded by torch), config.json and torch's logits. Only h.0.ln_1 and ln_f get random LN
 * parameters, so the exporter deduplicates the others into Identity nodes.
 */
const TORCH_EXPORT_SCRIPT = String.raw`
import json, math, os, sys, torch
import torch.nn as nn
out = sys.argv[1]
V, D, H, M, N, L = 50, 8, 2, 32, 16, 2
class Conv1D(nn.Module):
    def __init__(s, nx, nf):
        super().__init__(); s.nf = nf
        s.weight = nn.Parameter(torch.randn(nx, nf) * 0.3); s.bias = nn.Parameter(torch.randn(nf) * 0.2)
    def forward(s, x):
        return torch.addmm(s.bias, x.view(-1, x.size(-1)), s.weight).view(x.size()[:-1] + (s.nf,))
class Attn(nn.Module):
    def __init__(s):
        super().__init__(); s.c_attn = Conv1D(D, 3 * D); s.c_proj = Conv1D(D, D)
        s.register_buffer('bias', torch.tril(torch.ones(N, N, dtype=torch.bool)).view(1, 1, N, N))
        s.register_buffer('masked_bias', torch.tensor(-1e4))
    def forward(s, x):
        B, T, _ = x.shape
        q, k, v = s.c_attn(x).split(D, dim=2)
        sh = lambda t: t.view(B, T, H, D // H).permute(0, 2, 1, 3)
        q, k, v = sh(q), sh(k), sh(v)
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D // H)
        w = torch.where(s.bias[:, :, :T, :T], w, torch.full([], torch.finfo(w.dtype).min)).softmax(-1)
        return s.c_proj(torch.matmul(w, v).permute(0, 2, 1, 3).reshape(B, T, D))
class MLP(nn.Module):
    def __init__(s):
        super().__init__(); s.c_fc = Conv1D(D, M); s.c_proj = Conv1D(M, D)
    def forward(s, x):
        h = s.c_fc(x)
        return s.c_proj(0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0)))))
class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.ln_1 = nn.LayerNorm(D); s.attn = Attn(); s.ln_2 = nn.LayerNorm(D); s.mlp = MLP()
    def forward(s, x):
        x = x + s.attn(s.ln_1(x)); return x + s.mlp(s.ln_2(x))
class Trunk(nn.Module):
    def __init__(s):
        super().__init__(); s.wte = nn.Embedding(V, D); s.wpe = nn.Embedding(N, D)
        s.h = nn.ModuleList([Block() for _ in range(L)]); s.ln_f = nn.LayerNorm(D)
    def forward(s, ids):
        x = s.wte(ids) + s.wpe(torch.arange(ids.size(-1)).unsqueeze(0))
        for b in s.h: x = b(x)
        return s.ln_f(x)
class LM(nn.Module):
    def __init__(s):
        super().__init__(); s.transformer = Trunk(); s.lm_head = nn.Linear(D, V, bias=False)
        s.lm_head.weight = s.transformer.wte.weight
    def forward(s, ids): return s.lm_head(s.transformer(ids))
torch.manual_seed(0)
m = LM().eval()
with torch.no_grad():
    for ln in (m.transformer.h[0].ln_1, m.transformer.ln_f):
        ln.weight.add_(torch.randn(D) * 0.3); ln.bias.add_(torch.randn(D) * 0.2)
def write_st(path, tensors):
    names = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.bool: 'BOOL'}
    header, blobs, off = {'__metadata__': {'format': 'pt'}}, [], 0
    for k, t in tensors.items():
        t = t.contiguous()
        b = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[k] = {'dtype': names[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    with open(path, 'wb') as f:
        f.write(len(h).to_bytes(8, 'little')); f.write(h)
        for b in blobs: f.write(b)
sd = {k: v.detach() for k, v in m.state_dict().items()}
write_st(os.path.join(out, 'model.safetensors'), sd)
floats = {k: v for k, v in sd.items() if v.dtype == torch.float32 and v.dim() > 0}
write_st(os.path.join(out, 'half.safetensors'), {k: v.half() for k, v in floats.items()})
write_st(os.path.join(out, 'bf16.safetensors'), {k: v.bfloat16() for k, v in floats.items()})
cfg = dict(model_type='gpt2', n_layer=L, n_head=H, n_embd=D, n_inner=M, n_positions=N, vocab_size=V, layer_norm_epsilon=1e-5, activation_function='gelu_new')
json.dump(cfg, open(os.path.join(out, 'config.json'), 'w'))
os.makedirs(os.path.join(out, 'onnx'))
torch.onnx.export(m, (torch.zeros(1, 5, dtype=torch.long),), os.path.join(out, 'onnx', 'model.onnx'), input_names=['input_ids'],
    output_names=['logits'], dynamic_axes={'input_ids': {0: 'b', 1: 's'}, 'logits': {0: 'b', 1: 's'}}, opset_version=17)
ids = [[int(x) for x in row] for row in json.loads(sys.argv[2])]
with torch.no_grad():
    logits = m(torch.tensor(ids)).double().tolist()
json.dump(logits, open(os.path.join(out, 'logits.json'), 'w'))
`;

describe.skipIf(!torchAvailable())('a GPT-2 exported by torch.onnx and saved by an independent safetensors writer', () => {
  const ids = [
    [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3, 2, 38, 46, 26],
    [0, 1, 2, 3, 4, 5, 6, 7, 49, 48, 47, 46, 45, 44, 43, 42],
  ];
  let tdir: string;
  beforeAll(() => {
    tdir = mkdtempSync(join(tmpdir(), 'relp-torch-'));
    const r = spawnSync(PYTHON, ['-c', TORCH_EXPORT_SCRIPT, tdir, JSON.stringify(ids)], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`torch export failed: ${r.stderr}`);
  });
  afterAll(() => rmSync(tdir, { recursive: true, force: true }));

  it('loads identically from safetensors and from the torch ONNX export, and matches torch logits', async () => {
    // Safetensors written by numpy: `transformer.` prefix, tied lm_head, BOOL and scalar buffers.
    const st = await loadCheckpoint(tdir);
    expect(st.format).toBe('safetensors');
    // ONNX written by torch: Gemm, LayerNormalization, Identity-deduplicated LN params, onnx::MatMul lm_head.
    renameSync(join(tdir, 'model.safetensors'), join(tdir, 'model.safetensors.bak'));
    const r = readGpt2Onnx(join(tdir, 'onnx', 'model.onnx'));
    expect(r.sources.get('lm_head.weight')).toMatchObject({ via: 'node', transposed: true });
    expect(r.sources.get('h.1.mlp.c_fc.weight')).toMatchObject({ initializer: 'transformer.h.1.mlp.c_fc.weight', via: 'name' });
    expect(r.sources.get('h.1.ln_2.weight')!.initializer).not.toBe('transformer.h.1.ln_2.weight'); // deduplicated by torch
    const ox = await loadCheckpoint(tdir);
    renameSync(join(tdir, 'model.safetensors.bak'), join(tdir, 'model.safetensors'));
    expect(ox.format).toBe('onnx');
    expectSameStateDict(ox.stateDict, st.stateDict);

    // The naive reference against torch itself.
    const torchLogits = JSON.parse(readFileSync(join(tdir, 'logits.json'), 'utf8')) as number[][][];
    let maxDiff = 0;
    ids.forEach((tokens, b) => {
      const ref = naiveGpt2(st.config, st.stateDict, tokens).logits;
      ref.forEach((row, p) => row.forEach((v, t) => (maxDiff = Math.max(maxDiff, Math.abs(v - torchLogits[b][p][t])))));
    });
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('our F16 / BF16 rounding equals torch .half() / .bfloat16()', async () => {
    const st = (await loadCheckpoint(tdir)).stateDict;
    for (const [file, dtype] of [['half.safetensors', 'F16'], ['bf16.safetensors', 'BF16']] as const) {
      const theirs = readSafetensors(join(tdir, file));
      const names = [...theirs.keys()].map((k) => k.replace(/^transformer\./, '')).filter((k) => st.has(k));
      expect(names.length).toBe(st.size);
      for (const [k, t] of theirs) {
        const canon = k.replace(/^transformer\./, '');
        if (!st.has(canon)) continue;
        const ours = roundThrough(st.get(canon)!.data, dtype);
        expect(new Uint32Array(t.data.buffer), `${dtype} ${k}`).toEqual(new Uint32Array(ours.buffer));
      }
    }
  });
});
