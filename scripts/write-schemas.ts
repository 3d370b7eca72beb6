/**
 * `npm run schemas`: write the JSON Schemas of relp's files (generated from the zod schemas in
 * src/contracts) to docs/schemas/. test/contracts/json-schema.test.ts fails when they are stale.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonSchemas } from '../src/contracts/json-schema.ts';

/** Folder of the published schemas. */
export const SCHEMA_DIR = fileURLToPath(new URL('../docs/schemas/', import.meta.url));

/** The text of each schema file, as written. */
export function schemaTexts(): Record<string, string> {
  return Object.fromEntries(Object.entries(jsonSchemas()).map(([name, s]) => [name, JSON.stringify(s, null, 2) + '\n']));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [name, text] of Object.entries(schemaTexts())) {
    writeFileSync(join(SCHEMA_DIR, name), text);
    process.stdout.write(`wrote docs/schemas/${name}\n`);
  }
}
