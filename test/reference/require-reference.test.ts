/**
 * RELP_REQUIRE_REFERENCE=1 turns "skip the PyTorch reference tests when torch is missing" into
 * "run them and fail with a clear error". Checked in child processes whose interpreter
 * (RELP_TORCH_PYTHON) cannot import torch.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const HELPER = fileURLToPath(new URL('../helpers/hf-reference.ts', import.meta.url));
const CODE = `import { torchAvailable, runHFReference } from ${JSON.stringify(HELPER)};
console.log(JSON.stringify({ runs: torchAvailable() }));
runHFReference('logits', ['--model', '/nonexistent', '--ids', '1']).then(
  () => console.log(JSON.stringify({ error: null })), (e) => console.log(JSON.stringify({ error: e.message })));`;

function probe(env: Record<string, string>): { runs: boolean; error: string | null } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CODE], {
    encoding: 'utf8', env: { ...process.env, RELP_REQUIRE_REFERENCE: '', ...env }, timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const [a, b] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { runs: a.runs as boolean, error: b.error as string | null };
}

describe('RELP_REQUIRE_REFERENCE', () => {
  it('without it, a missing torch skips the reference tests', () => {
    expect(probe({ RELP_TORCH_PYTHON: '/nonexistent/python3' }).runs).toBe(false);
  }, 120_000);

  it('with it, the reference tests run and every reference call fails naming the cause', () => {
    const p = probe({ RELP_TORCH_PYTHON: '/nonexistent/python3', RELP_REQUIRE_REFERENCE: '1' });
    expect(p.runs).toBe(true);
    expect(p.error).toMatch(/torch reference required \(RELP_REQUIRE_REFERENCE=1\) but \/nonexistent\/python3 cannot "import torch, numpy"/);
  }, 120_000);
});
