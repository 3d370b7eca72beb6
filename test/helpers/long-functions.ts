/**
 * Finds functions longer than a limit in TypeScript / JavaScript sources, with the TypeScript
 * parser (no type checking, so it is fast and reads the viewer's plain-JS page scripts too).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

/** Every .ts / .js / .mjs file under `dir` (hand-written .d.ts excluded: they hold no bodies). */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|js|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The name of a function-like node with a body (for the report), else undefined. */
function functionName(node: ts.Node, sf: ts.SourceFile): string | undefined {
  if (!ts.isFunctionLike(node) || !('body' in node) || !node.body) return undefined;
  const fn = node as ts.FunctionLikeDeclaration;
  if (fn.name) return fn.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const p = node.parent;
  if (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) return p.name.getText(sf);
  return '(anonymous)';
}

/** One function over the limit. */
export interface LongFunction {
  file: string;
  /** 1-based line of the function's first line. */
  line: number;
  name: string;
  /** Lines from the function's first line to its last, nested functions included. */
  lines: number;
}

/**
 * Every function declaration, method, constructor, accessor, function expression and arrow
 * function in `text` spanning more than `max` lines.
 */
export function longFunctionsIn(file: string, text: string, max: number): LongFunction[] {
  const kind = /\.[mc]?js$/.test(file) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const out: LongFunction[] = [];
  const visit = (node: ts.Node): void => {
    const name = functionName(node, sf);
    if (name !== undefined) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const lines = sf.getLineAndCharacterOfPosition(node.getEnd()).line - first + 1;
      if (lines > max) out.push({ file, line: first + 1, name, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** {@link longFunctionsIn} over files read from disk. */
export function longFunctions(files: readonly string[], max: number): LongFunction[] {
  return files.flatMap((f) => longFunctionsIn(f, readFileSync(f, 'utf8'), max));
}
