/**
 * No function in src/ is over {@link MAX_LINES} lines: every function declaration, method,
 * constructor, accessor, function expression and arrow function of the TypeScript and JavaScript
 * sources (the viewer's page scripts included), counted from its first line to its last, nested
 * functions included. Why: a long function hides its steps; a helper with a name says what each does.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { longFunctions, longFunctionsIn, sourceFiles } from '../helpers/long-functions.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAX_LINES = 100;

describe('source shape', () => {
  it(`no function in src/ is over ${MAX_LINES} lines`, () => {
    const files = sourceFiles(join(ROOT, 'src'));
    expect(files.some((f) => f.endsWith('.js'))).toBe(true); // the page scripts are read too
    const long = longFunctions(files, MAX_LINES).map((f) => `${f.file.slice(ROOT.length)}:${f.line} ${f.name} (${f.lines} lines)`);
    expect(long).toEqual([]);
  });

  it('counts every kind of function, in .ts and .js, by its first and last line', () => {
    const body = (n: number) => Array.from({ length: n - 2 }, (_, i) => `  x += ${i};`).join('\n');
    const src = [
      `function decl() {\n${body(101)}\n}`,
      `const arrow = () => {\n${body(101)}\n};`,
      `const fine = () => {\n${body(100)}\n};`,
      `class C {\n  method() {\n${body(101)}\n  }\n  constructor() {\n${body(101)}\n  }\n}`,
      `export default function () {\n${body(101)}\n}`,
    ].join('\n');
    const names = (file: string) => longFunctionsIn(file, src, MAX_LINES).map((f) => `${f.name}:${f.lines}`);
    const want = ['decl:101', 'arrow:101', 'method:101', 'constructor:101', '(anonymous):101'];
    expect(names('x.ts')).toEqual(want);
    expect(names('x.js')).toEqual(want);
  });
});
