/**
 * Every type an exported function of the package uses is exported: TypeDoc documents exactly the
 * package's entry points (package.json "exports") with `validation.notExported` and warnings as
 * errors, so `npm run docs` (and `npx typedoc --emit none`) fails on a type that a public function,
 * class or interface references but no entry point exports. This test keeps that check pointed at
 * the real entry points.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const json = (file: string) => JSON.parse(readFileSync(ROOT + file, 'utf8')) as Record<string, unknown>;

describe('package exports', () => {
  it("TypeDoc's entry points are the package's, with the not-exported check on and warnings as errors", () => {
    const exportsMap = json('package.json').exports as Record<string, string | { types: string }>;
    // ./dist/circuits/index.d.ts → src/circuits/index.ts: the source each entry point compiles from.
    const sources = Object.values(exportsMap)
      .filter((v): v is { types: string } => typeof v === 'object')
      .map((v) => v.types.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$/, '.ts'));
    expect(sources).toEqual(['src/index.ts', 'src/circuits/index.ts', 'src/viz/index.ts']);
    const typedoc = json('typedoc.json') as { entryPoints: string[]; entryPointStrategy: string; treatWarningsAsErrors: boolean; validation: { notExported: boolean } };
    expect(typedoc.entryPoints).toEqual(sources);
    expect(typedoc.entryPointStrategy).toBe('resolve');
    expect(typedoc.validation.notExported).toBe(true);
    expect(typedoc.treatWarningsAsErrors).toBe(true);
  });
});
