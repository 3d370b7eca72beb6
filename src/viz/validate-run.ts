/**
 * Validation of `run.json` (see {@link RunFile}). Each failure names the file and the JSON path
 * of the offending value, e.g. `run.json: scores.relp.resid_pre.values[3] has 14 entries, expected 15`.
 * The viewer is strict about what it draws (scores, labels) and lenient about the rest.
 */
import { ViewerDataError } from './errors.ts';
import { SCORE_LAYOUTS, type NestedNumbers, type RunFile, type ScoreAxis, type ScoreTensor } from './types.ts';

/** A plain JSON object. */
export type Obj = Record<string, unknown>;

/** True for a plain JSON object. */
export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A 422 error for `file` at JSON path `where`. */
export function invalid(file: string, where: string, what: string): ViewerDataError {
  return new ViewerDataError(422, `${file}: ${where} ${what}`);
}

/** Describe a JSON value's type for messages. */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** JSON path of `key` under `base` (`a.b`, or `a["atp*"]` for keys that are not identifiers). */
export function child(base: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

/**
 * Check `values` is a nested array of exactly `shape`, holding finite numbers or null.
 * @throws ViewerDataError naming the first wrong index.
 */
export function checkNested(file: string, where: string, values: unknown, shape: number[]): void {
  const walk = (v: unknown, depth: number, at: string): void => {
    if (depth === shape.length) {
      if (v === null) return;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(file, at, `is ${typeName(v)}${typeof v === 'number' ? ` (${v})` : ''}, expected a finite number or null`);
      return;
    }
    if (!Array.isArray(v)) throw invalid(file, at, `is ${typeName(v)}, expected an array of ${shape[depth]}`);
    if (v.length !== shape[depth]) throw invalid(file, at, `has ${v.length} entries, expected ${shape[depth]} (shape [${shape.join(', ')}])`);
    for (let k = 0; k < v.length; k++) walk(v[k], depth + 1, `${at}[${k}]`);
  };
  walk(values, 0, where);
}

/** Validate one score tensor; `nPos` (the label count) must match a `pos` axis. */
export function checkScoreTensor(file: string, where: string, t: unknown, nPos: number): ScoreTensor {
  if (!isObject(t)) throw invalid(file, where, `is ${typeName(t)}, expected {axes, shape, values}`);
  const { axes, shape, values } = t;
  if (!Array.isArray(axes) || !SCORE_LAYOUTS.some((l) => l.length === axes.length && l.every((a, k) => a === axes[k]))) {
    throw invalid(file, `${where}.axes`, `is ${JSON.stringify(axes)}, expected one of ${SCORE_LAYOUTS.map((l) => JSON.stringify(l)).join(', ')}`);
  }
  if (!Array.isArray(shape) || shape.length !== axes.length || !shape.every((d) => Number.isInteger(d) && (d as number) > 0)) {
    throw invalid(file, `${where}.shape`, `is ${JSON.stringify(shape)}, expected ${axes.length} positive integers`);
  }
  const posAxis = axes.indexOf('pos');
  if (posAxis >= 0 && shape[posAxis] !== nPos) {
    throw invalid(file, `${where}.shape`, `has ${shape[posAxis]} positions but labels has ${nPos} tokens`);
  }
  checkNested(file, `${where}.values`, values, shape as number[]);
  return { axes: axes as ScoreAxis[], shape: shape as number[], values: values as NestedNumbers };
}

function optionalType(file: string, where: string, v: unknown, type: 'string' | 'number'): void {
  if (v === undefined || v === null) return;
  if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) throw invalid(file, where, `is ${typeName(v)}, expected a ${type}`);
}

/**
 * Validate a parsed `run.json`.
 * @param file label used in messages, e.g. `runs/ioi-1/run.json`.
 * @throws ViewerDataError 422 with the JSON path of the first problem.
 */
export function validateRunFile(raw: unknown, file = 'run.json'): RunFile {
  if (!isObject(raw)) throw invalid(file, 'top level', `is ${typeName(raw)}, expected an object`);
  if (raw.version !== 1) throw invalid(file, 'version', `is ${JSON.stringify(raw.version)}, expected 1`);
  if (!isObject(raw.model)) throw invalid(file, 'model', `is ${typeName(raw.model)}, expected {path, config, sha256}`);
  optionalType(file, 'model.path', raw.model.path, 'string');
  optionalType(file, 'model.sha256', raw.model.sha256, 'string');
  if (!isObject(raw.dataset)) throw invalid(file, 'dataset', `is ${typeName(raw.dataset)}, expected {kind, seed, pairs}`);
  optionalType(file, 'dataset.kind', raw.dataset.kind, 'string');
  const pairs = raw.dataset.pairs ?? [];
  if (!Array.isArray(pairs)) throw invalid(file, 'dataset.pairs', `is ${typeName(pairs)}, expected an array`);
  pairs.forEach((p, k) => {
    if (!isObject(p)) throw invalid(file, `dataset.pairs[${k}]`, `is ${typeName(p)}, expected an object`);
    for (const key of ['clean', 'corrupt', 'answer', 'wrong']) optionalType(file, `dataset.pairs[${k}].${key}`, p[key], 'string');
  });
  if (raw.metric !== undefined) {
    if (!isObject(raw.metric)) throw invalid(file, 'metric', `is ${typeName(raw.metric)}, expected {name, clean, corrupt}`);
    optionalType(file, 'metric.name', raw.metric.name, 'string');
    optionalType(file, 'metric.clean', raw.metric.clean, 'number');
    optionalType(file, 'metric.corrupt', raw.metric.corrupt, 'number');
  }
  const labels = raw.labels;
  if (!Array.isArray(labels) || !labels.every((s) => typeof s === 'string')) {
    const bad = Array.isArray(labels) ? labels.findIndex((s) => typeof s !== 'string') : -1;
    throw invalid(file, bad >= 0 ? `labels[${bad}]` : 'labels', `is ${typeName(bad >= 0 ? (labels as unknown[])[bad] : labels)}, expected ${bad >= 0 ? 'a token string' : 'an array of token strings'}`);
  }
  if (!isObject(raw.scores)) throw invalid(file, 'scores', `is ${typeName(raw.scores)}, expected {method: {component: tensor}}`);
  const scores: RunFile['scores'] = {};
  for (const [method, comps] of Object.entries(raw.scores)) {
    const mWhere = child('scores', method);
    if (!isObject(comps)) throw invalid(file, mWhere, `is ${typeName(comps)}, expected {component: tensor}`);
    scores[method] = {};
    for (const [comp, t] of Object.entries(comps)) {
      scores[method]![comp] = checkScoreTensor(file, child(mWhere, comp), t, labels.length);
    }
  }
  if (raw.rules !== undefined && raw.rules !== null && typeof raw.rules !== 'string') throw invalid(file, 'rules', `is ${typeName(raw.rules)}, expected a string`);
  if (raw.timings !== undefined) {
    if (!isObject(raw.timings)) throw invalid(file, 'timings', `is ${typeName(raw.timings)}, expected {method: seconds}`);
    for (const [m, s] of Object.entries(raw.timings)) optionalType(file, child('timings', m), s, 'number');
  }
  optionalType(file, 'created', raw.created, 'string');
  return { ...(raw as unknown as RunFile), scores, labels: labels as string[] };
}

/**
 * Flatten a score tensor row-major into a Float64Array; null becomes NaN.
 * Output length = product of `t.shape`.
 */
export function flattenTensor(t: ScoreTensor): Float64Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  let k = 0;
  const walk = (v: NestedNumbers | number | null): void => {
    if (Array.isArray(v)) for (const x of v) walk(x as NestedNumbers | number | null);
    else out[k++] = v === null ? NaN : v;
  };
  walk(t.values);
  return out;
}
