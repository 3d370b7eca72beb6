/**
 * Export a GPT-2 state dict as a standard ONNX graph (opset 17, default domain only).
 *
 * Input `input_ids` [batch_size, sequence_length] int64 -> output `logits`
 * [batch_size, sequence_length, dVocab] float32. Shapes are dynamic (sequence length up to nCtx).
 * Node names follow the HF optimum export style (`/transformer/h.0/attn/c_attn/MatMul`) so that
 * anonymous initializers can be mapped back by `onnx-read.ts`. Used to check our model against
 * ONNX Runtime and to produce transformers.js-style checkpoints.
 */
import { writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import type { NamedArray, StateDict } from './tensors.ts';

/** The GPT-2 sizes the writer needs (a BaseConfig satisfies it). */
export interface Gpt2OnnxShape {
  nLayers: number;
  nHeads: number;
  dModel: number;
  dHead: number;
  dMlp: number;
  nCtx: number;
  dVocab: number;
  eps: number;
  act: string;
}

/** Every tensor the writer reads, with its shape; one error lists what is missing or misshapen. */
function checkGpt2Tensors(sd: StateDict, cfg: Gpt2OnnxShape): void {
  const d = cfg.dModel;
  const want: [string, number[]][] = [['wte.weight', [cfg.dVocab, d]], ['wpe.weight', [cfg.nCtx, d]], ['ln_f.weight', [d]], ['ln_f.bias', [d]]];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `h.${l}.`;
    want.push([p + 'ln_1.weight', [d]], [p + 'ln_1.bias', [d]], [p + 'ln_2.weight', [d]], [p + 'ln_2.bias', [d]]);
    want.push([p + 'attn.c_attn.weight', [d, 3 * d]], [p + 'attn.c_attn.bias', [3 * d]], [p + 'attn.c_proj.weight', [d, d]], [p + 'attn.c_proj.bias', [d]]);
    want.push([p + 'mlp.c_fc.weight', [d, cfg.dMlp]], [p + 'mlp.c_fc.bias', [cfg.dMlp]], [p + 'mlp.c_proj.weight', [cfg.dMlp, d]], [p + 'mlp.c_proj.bias', [d]]);
  }
  const problems: string[] = [];
  for (const [n, shape] of want) {
    const t = sd.get(n);
    if (!t) problems.push(`missing tensor "${n}" (expected shape [${shape.join(', ')}])`);
    else if (t.shape.join() !== shape.join()) problems.push(`tensor "${n}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  if (problems.length) throw new Error(`weights do not match config.json:\n  - ${problems.join('\n  - ')}`);
}

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;

const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

/** Options for {@link writeGpt2Onnx}. */
export interface WriteGpt2OnnxOptions {
  /**
   * Name weight initializers `onnx::MatMul_1234`-style instead of after their parameters, and
   * store the unembedding as a transposed copy of `wte` (as torch.onnx does for tied heads).
   */
  anonymousInitializers?: boolean;
  /** Store weights in `float_data` instead of `raw_data` (both are valid ONNX). */
  floatData?: boolean;
}

type Attr = { name: string; i?: number; ints?: number[]; f?: number };

function attr(a: Attr): AttributeProto {
  if (a.ints) return { name: a.name, type: AT.INTS, ints: a.ints };
  if (a.f !== undefined) return { name: a.name, type: AT.FLOAT, f: a.f };
  return { name: a.name, type: AT.INT, i: a.i ?? 0 };
}

function int64Tensor(values: number[], dims: number[]): TensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { dataType: DT.INT64, dims, rawData: new Uint8Array(data.buffer) };
}

function floatTensor(values: Float32Array, dims: number[], asFloatData: boolean): TensorProto {
  return asFloatData
    ? { dataType: DT.FLOAT, dims, floatData: Array.from(values) }
    : { dataType: DT.FLOAT, dims, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** Accumulates nodes and initializers with optimum-style names. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private anonCounter = 1000;
  private readonly opCounts = new Map<string, number>();

  constructor(private readonly opts: WriteGpt2OnnxOptions) {}

  /** Unique node name in a module scope: `/scope/Op`, `/scope/Op_1`, ... */
  private nodeName(scope: string, op: string): string {
    const key = `${scope}/${op}`;
    const k = this.opCounts.get(key) ?? 0;
    this.opCounts.set(key, k + 1);
    return k === 0 ? key : `${key}_${k}`;
  }

  /** Add a node; returns its output names (`<node>_output_<i>`, or `outName` for a single output). */
  op(scope: string, opType: string, inputs: string[], attrs: Attr[] = [], nOut = 1, outName?: string): string[] {
    const name = this.nodeName(scope, opType);
    const output = outName ? [outName] : Array.from({ length: nOut }, (_, i) => `${name}_output_${i}`);
    this.nodes.push({ name, opType, input: inputs, output, attribute: attrs.map(attr) });
    return output;
  }

  one(scope: string, opType: string, inputs: string[], attrs: Attr[] = []): string {
    return this.op(scope, opType, inputs, attrs)[0];
  }

  /** A Constant node holding a float scalar (rank 0). */
  constF(scope: string, value: number): string {
    const t = floatTensor(Float32Array.of(value), [], false);
    const name = this.nodeName(scope, 'Constant');
    const out = `${name}_output_0`;
    this.nodes.push({ name, opType: 'Constant', input: [], output: [out], attribute: [{ name: 'value', type: AT.TENSOR, t }] });
    return out;
  }

  /** A Constant node holding int64 values. */
  constI(scope: string, values: number[], dims: number[]): string {
    const name = this.nodeName(scope, 'Constant');
    const out = `${name}_output_0`;
    const t = int64Tensor(values, dims);
    this.nodes.push({ name, opType: 'Constant', input: [], output: [out], attribute: [{ name: 'value', type: AT.TENSOR, t }] });
    return out;
  }

  /** A weight initializer, named after its parameter or anonymously after its consumer op. */
  weight(param: string, t: NamedArray, consumerOp: string): string {
    const name = this.opts.anonymousInitializers ? `onnx::${consumerOp}_${this.anonCounter++}` : param;
    this.initializers.push({ ...floatTensor(t.data, t.shape, this.opts.floatData ?? false), name });
    return name;
  }
}

function get(sd: StateDict, name: string): NamedArray {
  const t = sd.get(name);
  if (!t) throw new Error(`state dict has no tensor "${name}"`);
  return t;
}

function transpose2d(t: NamedArray): NamedArray {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { shape: [c, r], data: out };
}

/** LayerNorm written out with elementary ops, as torch exports it below opset 17. */
function layerNorm(g: GraphBuilder, sd: StateDict, x: string, scope: string, param: string, eps: number): string {
  const mean = g.one(scope, 'ReduceMean', [x], [{ name: 'axes', ints: [-1] }, { name: 'keepdims', i: 1 }]);
  const xc = g.one(scope, 'Sub', [x, mean]);
  const sq = g.one(scope, 'Pow', [xc, g.constF(scope, 2)]);
  const variance = g.one(scope, 'ReduceMean', [sq], [{ name: 'axes', ints: [-1] }, { name: 'keepdims', i: 1 }]);
  const std = g.one(scope, 'Sqrt', [g.one(scope, 'Add', [variance, g.constF(scope, eps)])]);
  const normed = g.one(scope, 'Div', [xc, std]);
  const scaled = g.one(scope, 'Mul', [normed, g.weight(`transformer.${param}.weight`, get(sd, `${param}.weight`), 'Mul')]);
  return g.one(scope, 'Add', [scaled, g.weight(`transformer.${param}.bias`, get(sd, `${param}.bias`), 'Add')]);
}

/** Conv1D: x @ W + b with W [in, out]. */
function conv1d(g: GraphBuilder, sd: StateDict, x: string, scope: string, param: string): string {
  const mm = g.one(scope, 'MatMul', [x, g.weight(`transformer.${param}.weight`, get(sd, `${param}.weight`), 'MatMul')]);
  return g.one(scope, 'Add', [mm, g.weight(`transformer.${param}.bias`, get(sd, `${param}.bias`), 'Add')]);
}

function activation(g: GraphBuilder, x: string, scope: string, act: string): string {
  if (act === 'gelu_new') {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const x3 = g.one(scope, 'Pow', [x, g.constF(scope, 3)]);
    const inner = g.one(scope, 'Add', [x, g.one(scope, 'Mul', [x3, g.constF(scope, 0.044715)])]);
    const th = g.one(scope, 'Tanh', [g.one(scope, 'Mul', [inner, g.constF(scope, Math.sqrt(2 / Math.PI))])]);
    const xs = g.one(scope, 'Mul', [x, g.one(scope, 'Add', [th, g.constF(scope, 1)])]);
    return g.one(scope, 'Mul', [xs, g.constF(scope, 0.5)]);
  }
  // 0.5 x (1 + erf(x / sqrt 2))
  const e = g.one(scope, 'Erf', [g.one(scope, 'Div', [x, g.constF(scope, Math.SQRT2)])]);
  const xs = g.one(scope, 'Mul', [x, g.one(scope, 'Add', [e, g.constF(scope, 1)])]);
  return g.one(scope, 'Mul', [xs, g.constF(scope, 0.5)]);
}

/**
 * Build the ONNX model bytes for a GPT-2 (see module doc for inputs/outputs).
 * Throws if the state dict does not match the config.
 */
export function buildGpt2Onnx(cfg: Gpt2OnnxShape, sd: StateDict, opts: WriteGpt2OnnxOptions = {}): Uint8Array {
  if (cfg.act !== 'gelu_new' && cfg.act !== 'gelu') throw new Error(`onnx export: activation "${cfg.act}" is not GPT-2's (gelu_new or gelu); the ONNX writer writes GPT-2 only`);
  checkGpt2Tensors(sd, cfg);
  const g = new GraphBuilder(opts);
  const T = '/transformer';

  // Positions 0..seq-1 and the causal mask, computed from the input's shape.
  const shape = g.one(T, 'Shape', ['input_ids']);
  const seqLen = g.one(T, 'Gather', [shape, g.constI(T, [1], [])], [{ name: 'axis', i: 0 }]); // scalar
  const positions = g.one(T, 'Range', [g.constI(T, [0], []), seqLen, g.constI(T, [1], [])]); // [seq]
  const rows = g.one(T, 'Unsqueeze', [positions, g.constI(T, [1], [1])]); // [seq, 1]
  const cols = g.one(T, 'Unsqueeze', [positions, g.constI(T, [0], [1])]); // [1, seq]
  const future = g.one(T, 'Less', [rows, cols]); // [q, k] true where k > q

  const tok = g.one(`${T}/wte`, 'Gather', [g.weight('transformer.wte.weight', get(sd, 'wte.weight'), 'Gather'), 'input_ids']);
  const pos = g.one(`${T}/wpe`, 'Gather', [g.weight('transformer.wpe.weight', get(sd, 'wpe.weight'), 'Gather'), positions]);
  let resid = g.one(T, 'Add', [tok, pos]); // [batch, seq, d]

  const { nHeads: H, dHead, dModel: d } = cfg;
  for (let l = 0; l < cfg.nLayers; l++) {
    const B = `${T}/h.${l}`;
    const A = `${B}/attn`;
    const ln1 = layerNorm(g, sd, resid, `${B}/ln_1`, `h.${l}.ln_1`, cfg.eps);
    const qkv = conv1d(g, sd, ln1, `${A}/c_attn`, `h.${l}.attn.c_attn`); // [batch, seq, 3d]
    const [q, k, v] = g.op(A, 'Split', [qkv], [{ name: 'axis', i: 2 }], 3);
    const headShape = g.constI(A, [0, 0, H, dHead], [4]);
    const qh = g.one(A, 'Transpose', [g.one(A, 'Reshape', [q, headShape])], [{ name: 'perm', ints: [0, 2, 1, 3] }]); // [b, H, q, dh]
    const kh = g.one(A, 'Transpose', [g.one(A, 'Reshape', [k, headShape])], [{ name: 'perm', ints: [0, 2, 3, 1] }]); // [b, H, dh, k]
    const vh = g.one(A, 'Transpose', [g.one(A, 'Reshape', [v, headShape])], [{ name: 'perm', ints: [0, 2, 1, 3] }]); // [b, H, k, dh]
    const scores = g.one(A, 'Div', [g.one(A, 'MatMul', [qh, kh]), g.constF(A, Math.sqrt(dHead))]); // [b, H, q, k]
    const masked = g.one(A, 'Where', [future, g.constF(A, -3.4028234663852886e38), scores]);
    const pattern = g.one(A, 'Softmax', [masked], [{ name: 'axis', i: -1 }]);
    const z = g.one(A, 'Transpose', [g.one(A, 'MatMul', [pattern, vh])], [{ name: 'perm', ints: [0, 2, 1, 3] }]); // [b, q, H, dh]
    const zFlat = g.one(A, 'Reshape', [z, g.constI(A, [0, 0, d], [3])]); // [b, q, d]
    const attnOut = conv1d(g, sd, zFlat, `${A}/c_proj`, `h.${l}.attn.c_proj`);
    const mid = g.one(B, 'Add', [resid, attnOut]);

    const ln2 = layerNorm(g, sd, mid, `${B}/ln_2`, `h.${l}.ln_2`, cfg.eps);
    const pre = conv1d(g, sd, ln2, `${B}/mlp/c_fc`, `h.${l}.mlp.c_fc`); // [b, seq, dMlp]
    const post = activation(g, pre, `${B}/mlp/act`, cfg.act);
    const mlpOut = conv1d(g, sd, post, `${B}/mlp/c_proj`, `h.${l}.mlp.c_proj`);
    resid = g.one(B, 'Add', [mid, mlpOut]);
  }
  const final = layerNorm(g, sd, resid, `${T}/ln_f`, 'ln_f', cfg.eps);

  // Tied unembedding: named style transposes wte in the graph; anonymous style stores W_U = wte^T.
  const wte = get(sd, 'wte.weight');
  let wU: string;
  if (opts.anonymousInitializers) {
    wU = g.weight('lm_head.weight', transpose2d(wte), 'MatMul');
  } else {
    wU = g.one('/lm_head', 'Transpose', ['transformer.wte.weight'], [{ name: 'perm', ints: [1, 0] }]);
  }
  g.op('/lm_head', 'MatMul', [final, wU], [], 1, 'logits');

  const dims = (names: (string | number)[]) => ({
    dim: names.map((n) => (typeof n === 'number' ? { dimValue: n } : { dimParam: n })),
  });
  const model: onnxProto.onnx.IModelProto = {
    irVersion: 8,
    producerName: 'relp',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'gpt2',
      node: g.nodes,
      initializer: g.initializers,
      input: [{ name: 'input_ids', type: { tensorType: { elemType: DT.INT64, shape: dims(['batch_size', 'sequence_length']) } } }],
      output: [{ name: 'logits', type: { tensorType: { elemType: DT.FLOAT, shape: dims(['batch_size', 'sequence_length', cfg.dVocab]) } } }],
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

/** Write a GPT-2 as an ONNX file at `path` (see {@link buildGpt2Onnx}). */
export function writeGpt2Onnx(path: string, cfg: Gpt2OnnxShape, sd: StateDict, opts: WriteGpt2OnnxOptions = {}): void {
  writeFileSync(path, buildGpt2Onnx(cfg, sd, opts));
}
