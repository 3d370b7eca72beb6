/**
 * The folder graph of src/ has no cycles, and follows the pipeline
 * checkpoint I/O (io) → rules → model (models) → hooks → methods (patching, relp, circuits) → CLI / viewer.
 * Imports are parsed from the source text (`import`, `import type`, `export … from`, dynamic
 * `import()`); a top-level file (backend.ts, tokenizer.ts, index.ts) is a node of its own.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The layer of a file: its first folder under src/, or the file name for top-level files. */
function layer(path: string): string {
  const rel = relative(SRC, path);
  return rel.includes('/') ? rel.split('/')[0] : rel;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Folder-level edges: layer → layers it imports, with one example import each. */
function folderGraph(): Map<string, Map<string, string>> {
  const g = new Map<string, Map<string, string>>();
  for (const f of files(SRC)) {
    const from = layer(f);
    if (!g.has(from)) g.set(from, new Map());
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT_RE)) {
      const target = resolve(dirname(f), m[1] ?? m[2]);
      if (!target.startsWith(SRC)) continue;
      const to = layer(target);
      if (to !== from && !g.get(from)!.has(to)) g.get(from)!.set(to, `${relative(SRC, f)} imports ${relative(SRC, target)}`);
    }
  }
  return g;
}

/** A cycle as a list of edge descriptions, or undefined. */
function findCycle(g: Map<string, Map<string, string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of g.get(n)?.keys() ?? []) {
      if (state.get(m) === 'open') {
        const cyc = [...stack.slice(stack.indexOf(m)), m];
        return cyc.slice(0, -1).map((a, i) => g.get(a)!.get(cyc[i + 1])!);
      }
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of g.keys()) if (!state.has(n)) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

describe('folder graph of src/', () => {
  const g = folderGraph();

  it('finds the imports (sanity: the parser sees known edges)', () => {
    expect(g.get('hooks')?.has('models')).toBe(true);
    expect(g.get('models')?.has('rules')).toBe(true);
    expect(g.get('circuits')?.has('hooks')).toBe(true);
  });

  it('has no cycles', () => {
    expect(findCycle(g), 'a folder cycle (each step: an import that closes it)').toBeUndefined();
  });

  it('follows the pipeline: io at the bottom, the model below hooks, methods above', () => {
    const below: Record<string, string[]> = {
      io: [],
      rules: [],
      models: ['io', 'rules'],
      hooks: ['io', 'rules', 'models', 'backend', 'backend.ts', 'tokenizer.ts'],
    };
    for (const [folder, allowed] of Object.entries(below)) {
      const bad = [...(g.get(folder)?.entries() ?? [])].filter(([to]) => !allowed.includes(to)).map(([, why]) => why);
      expect(bad, `${folder}/ may import only ${allowed.join(', ') || 'nothing in src'}`).toEqual([]);
    }
  });

  it('detects a cycle when there is one (the checker itself)', () => {
    const fake = new Map([
      ['a', new Map([['b', 'a imports b']])],
      ['b', new Map([['a', 'b imports a']])],
    ]);
    expect(findCycle(fake)).toEqual(['a imports b', 'b imports a']);
  });
});
