/**
 * JSON Schemas of relp's files, generated from the zod schemas, so tools in other languages can
 * read them. `npm run schemas` writes them to docs/schemas/; a test checks they are current.
 * (Cross-field rules, such as a tensor's values matching its shape, are checked by the readers
 * but cannot be expressed in JSON Schema.)
 */
import { z } from 'zod';
import { CircuitFileSchema } from './circuit.ts';
import { FaithfulnessFileSchema } from './faithfulness.ts';
import { MibFileSchema } from './mib.ts';
import { RunFileSchema } from './run.ts';

/** File name in docs/schemas → JSON Schema (draft 2020-12). */
export function jsonSchemas(): Record<string, Record<string, unknown>> {
  const make = (schema: z.ZodType, id: string, title: string) => ({
    $id: `https://github.com/relp/relp/docs/schemas/${id}`,
    title,
    ...z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }),
  });
  return {
    'run.schema.json': make(RunFileSchema, 'run.schema.json', 'relp run.json (patching scores of one run folder)'),
    'circuit.schema.json': make(CircuitFileSchema, 'circuit.schema.json', 'relp circuit.json (edge circuit, attribution-graph layout)'),
    'faithfulness.schema.json': make(FaithfulnessFileSchema, 'faithfulness.schema.json', 'relp faithfulness.json (faithfulness curve per method)'),
    'mib-circuit.schema.json': make(MibFileSchema, 'mib-circuit.schema.json', 'MIB circuit-localization file (relp circuit --mib-out / --from-mib)'),
  };
}
