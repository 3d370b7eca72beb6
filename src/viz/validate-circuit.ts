/**
 * Validation of `circuit.json` (attribution-graph style, see {@link CircuitFile}) and
 * `faithfulness.json` (see {@link FaithfulnessCurve}). Messages name the file and JSON path,
 * e.g. `circuit.json: links[812].target "a3.h9" is not a node id`.
 */
import { child, invalid, isObject, typeName } from './validate-run.ts';
import type { CircuitFile, CircuitNode, FaithfulnessCurve } from './types.ts';

const FEATURE_TYPES = new Set(['embedding', 'attention', 'mlp', 'logits']);
const TARGET_INPUTS = new Set(['q', 'k', 'v']);

function checkScoreMap(file: string, where: string, v: unknown): void {
  if (v === undefined) return;
  if (!isObject(v)) throw invalid(file, where, `is ${typeName(v)}, expected {method: number}`);
  for (const [m, s] of Object.entries(v)) {
    if (s !== null && (typeof s !== 'number' || !Number.isFinite(s))) throw invalid(file, child(where, m), `is ${typeName(s)}, expected a finite number or null`);
  }
}

/**
 * Validate a parsed `circuit.json`: node ids unique, every link endpoint a node id, finite weights.
 * @throws ViewerDataError 422 with the JSON path of the first problem.
 */
export function validateCircuitFile(raw: unknown, file = 'circuit.json'): CircuitFile {
  if (!isObject(raw)) throw invalid(file, 'top level', `is ${typeName(raw)}, expected an object`);
  const metadata = raw.metadata ?? {};
  if (!isObject(metadata)) throw invalid(file, 'metadata', `is ${typeName(metadata)}, expected an object`);
  if (metadata.methods !== undefined && (!Array.isArray(metadata.methods) || !metadata.methods.every((m) => typeof m === 'string'))) {
    throw invalid(file, 'metadata.methods', `is ${typeName(metadata.methods)}, expected an array of method names`);
  }
  if (!Array.isArray(raw.nodes)) throw invalid(file, 'nodes', `is ${typeName(raw.nodes)}, expected an array`);
  if (!Array.isArray(raw.links)) throw invalid(file, 'links', `is ${typeName(raw.links)}, expected an array`);
  const ids = new Set<string>();
  raw.nodes.forEach((n: unknown, k: number) => {
    const at = `nodes[${k}]`;
    if (!isObject(n)) throw invalid(file, at, `is ${typeName(n)}, expected an object`);
    if (typeof n.node_id !== 'string' || n.node_id === '') throw invalid(file, `${at}.node_id`, `is ${typeName(n.node_id)}, expected a non-empty string`);
    if (ids.has(n.node_id)) throw invalid(file, `${at}.node_id`, `${JSON.stringify(n.node_id)} is used by an earlier node`);
    ids.add(n.node_id);
    if (typeof n.feature_type !== 'string' || !FEATURE_TYPES.has(n.feature_type)) {
      throw invalid(file, `${at}.feature_type`, `is ${JSON.stringify(n.feature_type)}, expected one of embedding, attention, mlp, logits`);
    }
    if (typeof n.layer !== 'number' || !Number.isInteger(n.layer)) throw invalid(file, `${at}.layer`, `is ${typeName(n.layer)}, expected an integer`);
    if (n.ctx_idx !== undefined && n.ctx_idx !== null && (typeof n.ctx_idx !== 'number' || !Number.isInteger(n.ctx_idx) || n.ctx_idx < 0)) {
      throw invalid(file, `${at}.ctx_idx`, `is ${JSON.stringify(n.ctx_idx)}, expected a position (integer ≥ 0) or null`);
    }
    if (n.head !== undefined && n.head !== null && (typeof n.head !== 'number' || !Number.isInteger(n.head) || n.head < 0)) {
      throw invalid(file, `${at}.head`, `is ${JSON.stringify(n.head)}, expected an integer ≥ 0`);
    }
    if (n.influence !== undefined && n.influence !== null && (typeof n.influence !== 'number' || !Number.isFinite(n.influence))) {
      throw invalid(file, `${at}.influence`, `is ${typeName(n.influence)}, expected a finite number`);
    }
    checkScoreMap(file, `${at}.scores`, n.scores);
  });
  raw.links.forEach((l: unknown, k: number) => {
    const at = `links[${k}]`;
    if (!isObject(l)) throw invalid(file, at, `is ${typeName(l)}, expected an object`);
    for (const end of ['source', 'target'] as const) {
      if (typeof l[end] !== 'string') throw invalid(file, `${at}.${end}`, `is ${typeName(l[end])}, expected a node id`);
      if (!ids.has(l[end] as string)) throw invalid(file, `${at}.${end}`, `${JSON.stringify(l[end])} is not a node id`);
    }
    if (typeof l.weight !== 'number' || !Number.isFinite(l.weight)) throw invalid(file, `${at}.weight`, `is ${typeName(l.weight)}, expected a finite number`);
    if (l.target_input !== undefined && l.target_input !== null && !TARGET_INPUTS.has(l.target_input as string)) {
      throw invalid(file, `${at}.target_input`, `is ${JSON.stringify(l.target_input)}, expected "q", "k", "v" or null`);
    }
    checkScoreMap(file, `${at}.scores`, l.scores);
  });
  const q = raw.qParams;
  if (q !== undefined) {
    if (!isObject(q)) throw invalid(file, 'qParams', `is ${typeName(q)}, expected an object`);
    if (q.pinnedIds !== undefined && (!Array.isArray(q.pinnedIds) || !q.pinnedIds.every((p) => typeof p === 'string'))) {
      throw invalid(file, 'qParams.pinnedIds', `is ${typeName(q.pinnedIds)}, expected an array of node ids`);
    }
    if (q.pruningThreshold !== undefined && q.pruningThreshold !== null && (typeof q.pruningThreshold !== 'number' || !Number.isFinite(q.pruningThreshold))) {
      throw invalid(file, 'qParams.pruningThreshold', `is ${typeName(q.pruningThreshold)}, expected a number`);
    }
  }
  return { ...(raw as unknown as CircuitFile), metadata: metadata as CircuitFile['metadata'], nodes: raw.nodes as CircuitNode[] };
}

/**
 * Validate a parsed `faithfulness.json` (one curve or an array of curves) and return an array.
 * @throws ViewerDataError 422 with the JSON path of the first problem.
 */
export function validateFaithfulnessFile(raw: unknown, file = 'faithfulness.json'): FaithfulnessCurve[] {
  const list = Array.isArray(raw) ? raw : [raw];
  const base = Array.isArray(raw) ? (k: number) => `[${k}]` : () => 'top level';
  return list.map((c: unknown, k: number) => {
    const at = base(k);
    if (!isObject(c)) throw invalid(file, at, `is ${typeName(c)}, expected {method, ablation, curve, full, empty, auc}`);
    const p = at === 'top level' ? '' : at;
    if (typeof c.method !== 'string') throw invalid(file, `${p}.method`.replace(/^\./, ''), `is ${typeName(c.method)}, expected a method name`);
    if (!Array.isArray(c.curve)) throw invalid(file, `${p}.curve`.replace(/^\./, ''), `is ${typeName(c.curve)}, expected an array of {edges, fraction_edges, recovered}`);
    c.curve.forEach((pt: unknown, j: number) => {
      const w = `${p}.curve[${j}]`.replace(/^\./, '');
      if (!isObject(pt)) throw invalid(file, w, `is ${typeName(pt)}, expected {edges, fraction_edges, recovered}`);
      for (const key of ['edges', 'fraction_edges', 'recovered']) {
        const v = pt[key];
        if (key === 'fraction_edges' && v === undefined) continue;
        if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(file, `${w}.${key}`, `is ${typeName(v)}, expected a finite number`);
      }
    });
    for (const key of ['full', 'empty', 'auc']) {
      const v = c[key];
      if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isFinite(v))) throw invalid(file, `${p}.${key}`.replace(/^\./, ''), `is ${typeName(v)}, expected a number`);
    }
    return c as unknown as FaithfulnessCurve;
  });
}
