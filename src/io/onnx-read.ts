/**
 * Extract GPT-2 weights from an ONNX graph (transformers.js / HF optimum style exports).
 *
 * Exporters name initializers in two ways:
 * - after the PyTorch parameter (`transformer.h.0.ln_1.weight`), sometimes reached through
 *   `Identity` nodes when the exporter deduplicated equal tensors;
 * - anonymously (`onnx::MatMul_1234`), typically when a parameter was transformed at export time
 *   (the tied `lm_head` becomes a transposed copy of `wte`).
 * Names are used first. Anonymous tensors are mapped by the node that consumes them: the node
 * name carries the module path (`/transformer/h.0/attn/c_attn/MatMul` -> `h.0.attn.c_attn`) and
 * the op type says which parameter it is (MatMul/Gemm/Gather -> weight, Add -> bias, ...).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { decodeBf16, decodeF16 } from './safetensors.ts';
import type { NamedArray, StateDict } from './tensors.ts';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type NodeProto = onnxProto.onnx.INodeProto;
type IntLike = number | { toNumber(): number };

const DT = onnx.TensorProto.DataType;

function toNum(v: IntLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Copy bytes into a fresh (aligned) buffer so typed views are valid. */
function aligned(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

function externalBytes(t: TensorProto, baseDir: string, label: string): Uint8Array {
  const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = kv.get('location');
  if (!location) throw new Error(`${label}: tensor "${t.name}" is stored externally but names no location`);
  const path = resolve(baseDir, location);
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch {
    throw new Error(`${label}: external data file "${location}" for tensor "${t.name}" is missing (looked at ${path})`);
  }
  const offset = Number(kv.get('offset') ?? 0);
  const length = kv.has('length') ? Number(kv.get('length')) : file.length - offset;
  if (offset + length > file.length) {
    throw new Error(`${label}: external data file "${location}" is truncated: tensor "${t.name}" needs bytes up to ${offset + length}, file has ${file.length}`);
  }
  return aligned(file.subarray(offset, offset + length));
}

/**
 * Decode a float TensorProto (FLOAT, FLOAT16, BFLOAT16, DOUBLE; raw_data, typed fields or
 * external data) to float32. Returns undefined for non-float tensors (shape constants etc.).
 * @param baseDir folder that external-data locations are relative to.
 * @param label file name used in error messages.
 */
export function decodeTensorProto(t: TensorProto, baseDir = '.', label = 'onnx'): NamedArray | undefined {
  const dtype = t.dataType ?? 0;
  if (dtype !== DT.FLOAT && dtype !== DT.FLOAT16 && dtype !== DT.BFLOAT16 && dtype !== DT.DOUBLE) return undefined;
  const shape = (t.dims ?? []).map(toNum);
  const numel = shape.reduce((a, b) => a * b, 1);
  const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
  const raw = external ? externalBytes(t, baseDir, label) : t.rawData && t.rawData.length ? aligned(t.rawData) : undefined;
  let data: Float32Array;
  if (raw) {
    const width = dtype === DT.FLOAT ? 4 : dtype === DT.DOUBLE ? 8 : 2;
    if (raw.byteLength !== numel * width) {
      throw new Error(`${label}: tensor "${t.name}" [${shape.join(', ')}] needs ${numel * width} bytes of data but holds ${raw.byteLength}`);
    }
    if (dtype === DT.FLOAT) data = new Float32Array(raw.buffer, 0, numel);
    else if (dtype === DT.DOUBLE) data = Float32Array.from(new Float64Array(raw.buffer, 0, numel));
    else {
      const bits = new Uint16Array(raw.buffer, 0, numel);
      data = dtype === DT.FLOAT16 ? decodeF16(bits) : decodeBf16(bits);
    }
  } else if (dtype === DT.FLOAT) {
    data = Float32Array.from(t.floatData ?? []);
  } else if (dtype === DT.DOUBLE) {
    data = Float32Array.from(t.doubleData ?? []);
  } else {
    // FLOAT16 / BFLOAT16 without raw_data keep their bit patterns in int32_data.
    const bits = Uint16Array.from(t.int32Data ?? []);
    data = dtype === DT.FLOAT16 ? decodeF16(bits) : decodeBf16(bits);
  }
  if (data.length !== numel) {
    throw new Error(`${label}: tensor "${t.name}" [${shape.join(', ')}] should hold ${numel} values but holds ${data.length}`);
  }
  return { shape, data };
}

/** Parameter path (without `.weight`/`.bias`) of every GPT-2 module that owns weights. */
const MODULE_RE = /(?:^|\.)(h\.\d+\.(?:ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)|ln_f|wte|wpe|lm_head)$/;
const PARAM_NAME_RE = /^(?:transformer\.)?((?:h\.\d+\.(?:ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)|ln_f|wte|wpe)\.(?:weight|bias)|lm_head\.weight)$/;

/** The GPT-2 module a node belongs to, from its optimum-style name (`/transformer/h.0/ln_1/Mul`). */
export function moduleOfNode(nodeName: string): string | undefined {
  const parts = nodeName.replace(/^\/+/, '').split('/');
  if (parts.length < 2) return undefined;
  return MODULE_RE.exec(parts.slice(0, -1).join('.'))?.[1];
}

/** Canonical name for an initializer named after a PyTorch parameter, else undefined. */
export function canonicalParamName(name: string): string | undefined {
  return PARAM_NAME_RE.exec(name)?.[1];
}

/** How one tensor was found (for diagnostics). */
export interface OnnxTensorSource {
  /** Initializer (or Constant output) that holds the data. */
  initializer: string;
  /** `name`: the initializer or an Identity alias carries the parameter name; `node`: mapped via its consumer. */
  via: 'name' | 'node';
  /** Consuming node, when mapped via a node. */
  node?: string;
  /** Whether the data was transposed to reach the canonical layout. */
  transposed: boolean;
}

/** Result of reading GPT-2 weights out of an ONNX model. */
export interface OnnxReadResult {
  /** Canonical names (no `transformer.` prefix); may include `lm_head.weight` [dVocab, dModel]. */
  tensors: StateDict;
  sources: Map<string, OnnxTensorSource>;
  /** Float initializers with more than one value that no parameter was mapped to. */
  unmapped: { name: string; shape: number[] }[];
}

function transpose2d(t: NamedArray): NamedArray {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { shape: [c, r], data: out };
}

function intAttr(node: NodeProto, name: string, dflt: number): number {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a ? toNum(a.i) : dflt;
}

interface NodeRole {
  param: string;
  transpose: boolean;
}

/** Which parameter input `idx` of `node` is, given its module, op type and the tensor's rank. */
function roleOf(node: NodeProto, idx: number, module: string, t: NamedArray): NodeRole | undefined {
  const op = node.opType ?? '';
  const rank = t.shape.length;
  const isVector = rank === 1 && t.shape[0] > 1;
  if (module === 'wte' || module === 'wpe') {
    return op === 'Gather' && idx === 0 && rank === 2 ? { param: `${module}.weight`, transpose: false } : undefined;
  }
  if (module === 'lm_head') {
    // lm_head.weight is [vocab, d]; MatMul(x, W) needs W as [d, vocab].
    if (op === 'MatMul' && idx === 1 && rank === 2) return { param: 'lm_head.weight', transpose: true };
    if (op === 'Gemm' && idx === 1 && rank === 2) return { param: 'lm_head.weight', transpose: intAttr(node, 'transB', 0) === 0 };
    return undefined;
  }
  if (/ln_(1|2)$|^ln_f$/.test(module)) {
    if (op === 'LayerNormalization' && idx === 1 && isVector) return { param: `${module}.weight`, transpose: false };
    if (op === 'LayerNormalization' && idx === 2 && isVector) return { param: `${module}.bias`, transpose: false };
    if (op === 'Mul' && isVector) return { param: `${module}.weight`, transpose: false };
    if (op === 'Add' && isVector) return { param: `${module}.bias`, transpose: false };
    return undefined;
  }
  // Conv1D modules: weight [in, out] as MatMul(x, W).
  if (op === 'MatMul' && idx === 1 && rank === 2) return { param: `${module}.weight`, transpose: false };
  if (op === 'Gemm' && idx === 1 && rank === 2) return { param: `${module}.weight`, transpose: intAttr(node, 'transB', 0) === 1 };
  if (op === 'Gemm' && idx === 2 && isVector) return { param: `${module}.bias`, transpose: false };
  if (op === 'Add' && isVector) return { param: `${module}.bias`, transpose: false };
  return undefined;
}

/**
 * Read GPT-2 weights from a serialized ONNX model.
 * @param bytes the `.onnx` file contents.
 * @param baseDir folder for external data files.
 * @param label name used in error messages (the file path).
 */
export function readGpt2OnnxBytes(bytes: Uint8Array, baseDir = '.', label = 'onnx'): OnnxReadResult {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${label}: not a valid ONNX model (${(e as Error).message})`);
  }
  const graph = model.graph;
  if (!graph) throw new Error(`${label}: ONNX model has no graph`);

  // Every tensor value the graph holds: initializers and Constant node outputs.
  const protos = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) protos.set(t.name ?? '', t);
  const alias = new Map<string, string>();
  for (const n of graph.node ?? []) {
    if (n.opType === 'Constant') {
      const v = (n.attribute ?? []).find((a) => a.name === 'value' && a.t);
      if (v?.t && n.output?.[0]) protos.set(n.output[0], { ...v.t, name: n.output[0] });
    } else if (n.opType === 'Identity' && n.input?.[0] && n.output?.[0]) {
      alias.set(n.output[0], n.input[0]);
    }
  }
  const resolveName = (name: string): string | undefined => {
    let cur = name;
    for (let hops = 0; hops <= alias.size; hops++) {
      if (protos.has(cur)) return cur;
      const next = alias.get(cur);
      if (next === undefined) return undefined;
      cur = next;
    }
    return undefined; // Identity cycle: ignore
  };
  const decoded = new Map<string, NamedArray | undefined>();
  const decode = (src: string): NamedArray | undefined => {
    if (!decoded.has(src)) decoded.set(src, decodeTensorProto(protos.get(src)!, baseDir, label));
    return decoded.get(src);
  };

  const tensors: StateDict = new Map();
  const sources = new Map<string, OnnxTensorSource>();
  const used = new Set<string>();

  // 1. Tensors carrying a parameter name (initializer, Constant output, or Identity output).
  const named = new Set<string>([...protos.keys(), ...alias.keys()]);
  for (const name of named) {
    const canon = canonicalParamName(name);
    if (!canon) continue;
    const src = resolveName(name);
    if (src === undefined) continue; // computed at run time, not stored
    const t = decode(src);
    if (!t) throw new Error(`${label}: tensor "${name}" is not a float tensor (data_type ${protos.get(src)?.dataType})`);
    if (tensors.has(canon) && sources.get(canon)!.initializer !== src) {
      throw new Error(`${label}: parameter "${canon}" is stored twice (in "${sources.get(canon)!.initializer}" and "${src}")`);
    }
    tensors.set(canon, t);
    sources.set(canon, { initializer: src, via: 'name', transposed: false });
    used.add(src);
  }

  // 2. Remaining parameters, found through the nodes that consume stored tensors.
  for (const node of graph.node ?? []) {
    if (node.opType === 'Identity' || node.opType === 'Constant') continue;
    const module = moduleOfNode(node.name ?? '');
    if (!module) continue;
    (node.input ?? []).forEach((inp, idx) => {
      const src = inp ? resolveName(inp) : undefined;
      if (src === undefined) return;
      const t = decode(src);
      if (!t) return;
      const role = roleOf(node, idx, module, t);
      if (!role) return;
      const prev = sources.get(role.param);
      if (prev?.via === 'name') return; // names win
      if (prev && (prev.initializer !== src || prev.transposed !== role.transpose)) {
        throw new Error(`${label}: parameter "${role.param}" is fed by two different tensors ("${prev.initializer}" via ${prev.node}, "${src}" via ${node.name})`);
      }
      if (prev) return;
      tensors.set(role.param, role.transpose ? transpose2d(t) : t);
      sources.set(role.param, { initializer: src, via: 'node', node: node.name ?? '', transposed: role.transpose });
      used.add(src);
    });
  }

  const unmapped: { name: string; shape: number[] }[] = [];
  for (const [name, p] of protos) {
    if (used.has(name)) continue;
    const dt = p.dataType ?? 0;
    const isFloat = dt === DT.FLOAT || dt === DT.FLOAT16 || dt === DT.BFLOAT16 || dt === DT.DOUBLE;
    const shape = (p.dims ?? []).map(toNum);
    if (isFloat && shape.reduce((a, b) => a * b, 1) > 1) unmapped.push({ name, shape });
  }
  return { tensors, sources, unmapped };
}

/** Read GPT-2 weights from an `.onnx` file (see {@link readGpt2OnnxBytes}). */
export function readGpt2Onnx(path: string): OnnxReadResult {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read ONNX file (${(e as Error).message})`);
  }
  return readGpt2OnnxBytes(bytes, dirname(path), path);
}
