/**
 * Bridge to the independent PyTorch reference (test/reference/gpt2_reference.py).
 *
 * Why: every numeric claim of relp is checked against an independent computation; this
 * runs a from-scratch float64 GPT-2 in PyTorch (Debian's /usr/bin/python3 + torch).
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Python interpreter that has torch (Debian package python3-torch); RELP_TORCH_PYTHON overrides it. */
export const PYTHON = process.env.RELP_TORCH_PYTHON || '/usr/bin/python3';

/** Absolute path of the reference script. */
export const REFERENCE_SCRIPT = fileURLToPath(new URL('../reference/gpt2_reference.py', import.meta.url));

let available: boolean | undefined;

/** True when RELP_REQUIRE_REFERENCE=1: reference tests must run (and fail) rather than skip without torch. */
export function referenceRequired(): boolean {
  return process.env.RELP_REQUIRE_REFERENCE === '1';
}

/** True when `/usr/bin/python3 -c "import torch, numpy"` succeeds (checked once, then cached). */
export function torchImports(): boolean {
  if (available === undefined) {
    const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore', timeout: 60_000 });
    available = r.status === 0;
  }
  return available;
}

/**
 * Whether the reference tests run: true when torch imports, and also when RELP_REQUIRE_REFERENCE=1
 * (then a missing torch fails every reference call with a clear error instead of skipping).
 * Use as `describe.skipIf(!torchAvailable())`.
 */
export function torchAvailable(): boolean {
  return torchImports() || referenceRequired();
}

/** Throws the "required but missing" error when RELP_REQUIRE_REFERENCE=1 and torch does not import. */
export function assertTorchForRequiredReference(): void {
  if (!torchImports()) {
    throw new Error(`torch reference required (RELP_REQUIRE_REFERENCE=1) but ${PYTHON} cannot "import torch, numpy"; ` +
      'install python3-torch and python3-numpy');
  }
}

/** `[layer][pos]` score grids per component (`resid_pre`, `attn_out`, `mlp_out`, ...). */
export type ScoreGrids = Record<string, number[][]>;

/** Output of the `patch` command. */
export interface ReferencePatchResult {
  /** Batch-mean logit difference of the clean and corrupt runs. */
  metric: { clean: number; corrupt: number };
  /** Per method (`activation`, `atp`, `relp`): component -> [layer][pos]. */
  scores: Record<string, ScoreGrids>;
}

/** Output of `logits` (`number[]` for the last position, `number[][]` with --all-positions). */
export interface ReferenceLogitsResult {
  logits: number[] | number[][];
}

/** Output of `lrp`: per-token input relevance and the explained output value. */
export interface ReferenceLrpResult {
  relevance: number[];
  output: number;
}

/** Output of `cache`: hook name -> nested arrays without the batch axis (-inf becomes null). */
export interface ReferenceCacheResult {
  cache: Record<string, unknown>;
}

/**
 * Run `python3 gpt2_reference.py <command> ...args` (or `opts.script`) and parse its JSON stdout.
 *
 * @param command `logits` | `cache` | `patch` | `lrp`
 * @param args further CLI arguments, e.g. `['--model', dir, '--ids', '1,2,3']`
 * @throws Error carrying the script's stderr when it exits non-zero or prints no JSON.
 */
export function runTorchReference(command: string, args: string[], opts: { timeoutMs?: number; script?: string } = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (!torchImports()) {
      try {
        assertTorchForRequiredReference();
      } catch (e) {
        reject(e as Error);
        return;
      }
    }
    const child = spawn(PYTHON, [opts.script ?? REFERENCE_SCRIPT, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`torch reference: could not start ${PYTHON}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code !== 0) {
        reject(new Error(`torch reference "${command}" failed (${signal ?? `exit ${code}`}): ${stderr}`));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')));
      } catch (e) {
        reject(new Error(`torch reference "${command}" printed no valid JSON (${(e as Error).message}); stderr: ${stderr}`));
      }
    });
  });
}
