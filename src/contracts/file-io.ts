/** Reading and atomically writing the JSON files of the contracts (Node only). */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ContractError } from './errors.ts';
import { parseJsonText } from './json-text.ts';

/** Read and parse `path` as JSON; errors name `label` (default: the path). */
export function readJson(path: string, label = path): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ContractError(label, null, code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`);
  }
  return parseJsonText(text, label);
}

/** Write `value` as JSON to `path` through a temporary file and a rename, so a kill never leaves a torn file. */
export function writeJsonAtomic(path: string, value: unknown, indent?: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, indent) + '\n');
  renameSync(tmp, path);
}

/** The refusal for a file of an unknown version, naming the version and the writer. */
export function unknownVersion(file: string, kind: string, raw: Record<string, unknown>, readable: readonly number[]): ContractError {
  const v = raw.version;
  const by = typeof raw.written_by === 'string' ? ` by ${raw.written_by}` : '';
  const range = readable.length === 1 ? `version ${readable[0]}` : `versions ${readable.join(', ')}`;
  if (typeof v === 'number' && Number.isInteger(v) && v > Math.max(...readable)) {
    return new ContractError(file, 'version', `is ${v}: this ${kind} was written${by || ' by a newer relp'} and this relp reads ${range} (upgrade relp to read it)`);
  }
  return new ContractError(file, 'version', `is ${JSON.stringify(v)}${by ? ` (written${by})` : ''}: not a ${kind} version this relp knows (it reads ${range})`);
}
