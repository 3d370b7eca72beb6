import { describe, expect, it } from 'vitest';
import { loadReferenceRuntime, referenceRequired } from './reference-runtime.ts';

describe('reference runtime skip logic', () => {
  const missing = () => Promise.reject(new Error("Cannot find module 'onnxruntime-node'"));
  it('skips with a note when the runtime is missing and not required', async () => {
    const notes: string[] = [];
    expect(await loadReferenceRuntime('ONNX Runtime', missing, {}, (s) => notes.push(s))).toBeUndefined();
    expect(notes.join('')).toMatch(/ONNX Runtime reference does not load \(Cannot find module 'onnxruntime-node'\).*RELP_REQUIRE_REFERENCE=1/);
  });
  it('fails when the runtime is missing and RELP_REQUIRE_REFERENCE=1 (CI)', async () => {
    await expect(loadReferenceRuntime('ONNX Runtime', missing, { RELP_REQUIRE_REFERENCE: '1' })).rejects.toThrow(/ONNX Runtime reference required \(RELP_REQUIRE_REFERENCE=1\) but it does not load: Cannot find module/);
    expect(referenceRequired({ RELP_REQUIRE_REFERENCE: '1' })).toBe(true);
    expect(referenceRequired({})).toBe(false);
  });
  it('returns the runtime when it loads', async () => {
    expect(await loadReferenceRuntime('x', () => Promise.resolve(42), { RELP_REQUIRE_REFERENCE: '1' })).toBe(42);
  });
});
