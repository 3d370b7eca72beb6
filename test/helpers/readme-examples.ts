/** The README's TypeScript examples, as the README test and the pack test run them. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The ```ts blocks of README.md, in order. */
export function readmeExamples(): string[] {
  const md = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  return [...md.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].filter((m) => m[1] === 'ts').map((m) => m[2]);
}

/** Source file of each package entry point, relative to src/ (what the exports map compiles). */
const ENTRY_SOURCES: Record<string, string> = { relp: 'index.ts', 'relp/circuits': 'circuits/index.ts', 'relp/viz': 'viz/index.ts' };

/**
 * An example with its `relp` imports pointed at the sources, for a file `depth` folders below the
 * repository root: the README test checks the examples against src/ in its own process (the pack
 * test runs them unchanged on the installed tarball).
 */
export function toSourceImports(code: string, depth = 3): string {
  return code.replace(/from '(relp(?:\/[a-z]+)?)'/g, (_m, spec: string) => {
    if (!(spec in ENTRY_SOURCES)) throw new Error(`a README example imports ${spec}, which is not an entry point of the package`);
    return `from '${'../'.repeat(depth)}src/${ENTRY_SOURCES[spec]}'`;
  });
}
