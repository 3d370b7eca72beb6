/**
 * Turn zod's first issue into a {@link ContractError} that names the JSON path and the problem in
 * plain words (`scores["atp*"].z.values[0][2] is a string, expected a finite number or null`).
 */
import type { z } from 'zod';
import { ContractError } from './errors.ts';

/** Describe a JSON value's type for messages. */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** JSON path of a zod path: `a.b[3]`, or `a["atp*"]` for keys that are not identifiers. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out === '' ? 'top level' : out;
}

/** The value at `path` in `raw` (undefined when the path leaves the data). */
export function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

const EXPECTED: Record<string, string> = {
  number: 'a finite number',
  int: 'an integer',
  string: 'a string',
  boolean: 'a boolean',
  object: 'an object',
  record: 'an object',
  array: 'an array',
  tuple: 'an array',
  null: 'null',
};

/** The value, shown when short (`["head","layer"]`), else its type. */
function show(v: unknown): string {
  if (v === undefined) return 'missing';
  const json = JSON.stringify(v);
  return typeof v !== 'object' || v === null || json.length > 60 ? `${typeName(v)}${typeof v === 'number' || typeof v === 'string' ? ` (${json})` : ''}` : json;
}

/** The deepest issue under a union (the branch that got furthest), so the path names the bad cell. */
function deepest(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return issue;
  let best: z.core.$ZodIssue = issue;
  for (const branch of issue.errors) {
    for (const inner of branch) {
      const full = deepest({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue);
      if (full.path.length > best.path.length) best = full;
    }
  }
  // A branch that failed at the union's own path says less than the union's message.
  // A literal mismatch inside a union of tuples (score axes) is better told at the union's path.
  if (best.code === 'invalid_value') return issue;
  return best.path.length > issue.path.length ? { ...best, message: issue.message.startsWith('expected') ? issue.message : best.message } as z.core.$ZodIssue : issue;
}

/** The problem text of one issue. */
function problemOf(issue: z.core.$ZodIssue, raw: unknown): string {
  const got = valueAt(raw, issue.path);
  // Our own refinements word the whole problem.
  if (issue.code === 'custom') return issue.message;
  if (got === undefined && issue.code === 'invalid_type') return `is missing (expected ${EXPECTED[issue.expected] ?? issue.expected})`;
  if (issue.message.startsWith('expected') || issue.message.startsWith('is ') || issue.message.startsWith('has ')) {
    return issue.message.startsWith('expected') ? `is ${show(got)}, ${issue.message}` : issue.message;
  }
  switch (issue.code) {
    case 'invalid_type':
      return `is ${typeName(got)}, expected ${EXPECTED[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `is ${show(got)}, expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    default:
      return `is ${show(got)}: ${issue.message}`;
  }
}

/**
 * Parse `raw` with `schema`, or throw a ContractError naming `file`, the JSON path of the first
 * problem and the problem.
 */
export function parseWith<S extends z.ZodType>(schema: S, raw: unknown, file: string): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = deepest(r.error.issues[0]!);
  throw new ContractError(file, jsonPath(issue.path), problemOf(issue, raw));
}
