/**
 * Bridge to the multi-architecture PyTorch reference (test/reference/hf_reference.py): same
 * runner, skip rule and RELP_REQUIRE_REFERENCE switch as the GPT-2 one in torch-reference.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTorchReference } from './torch-reference.ts';

export { PYTHON, torchAvailable, referenceRequired } from './torch-reference.ts';
export type { ReferenceCacheResult, ReferenceLogitsResult, ReferenceLrpResult, ReferencePatchResult, ScoreGrids } from './torch-reference.ts';

/** Absolute path of hf_reference.py. */
export const HF_REFERENCE_SCRIPT = fileURLToPath(new URL('../reference/hf_reference.py', import.meta.url));

/** Output of `grad`: d(logit[target] − logit[contrast])/d(activation) at each named hook (batch 1). */
export interface ReferenceGradResult {
  grad: Record<string, unknown>;
  value: number;
}

/**
 * Run `python3 hf_reference.py <command> ...args` and parse its JSON stdout.
 * @param command `info` | `logits` | `cache` | `grad` | `patch` | `lrp` | `ld`
 * @throws Error carrying the script's stderr when it exits non-zero.
 */
export function runHFReference(command: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<unknown> {
  return runTorchReference(command, args, { ...opts, script: HF_REFERENCE_SCRIPT });
}

/**
 * Run many reference commands in ONE Python process (torch is imported once; loaded checkpoints
 * are cached), e.g. `{ a: ['logits', '--model', dir, '--ids', '1,2'] }`.
 * @returns id -> the command's output, or `{ error }` with the message it failed with.
 */
export async function runHFReferenceBatch(jobs: Record<string, string[]>, opts: { timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
  const file = join(mkdtempSync(join(tmpdir(), 'relp-hf-jobs-')), 'jobs.json');
  writeFileSync(file, JSON.stringify({ jobs }));
  try {
    const out = (await runHFReference('batch', ['--jobs', file], { timeoutMs: opts.timeoutMs ?? 1_200_000 })) as { results: Record<string, unknown> };
    return out.results;
  } finally {
    rmSync(dirname(file), { recursive: true, force: true });
  }
}
