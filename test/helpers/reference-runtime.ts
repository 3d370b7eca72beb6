/**
 * Loading an independent reference runtime (ONNX Runtime, ...) for a parity test: the test skips,
 * saying why, when the runtime does not load — unless RELP_REQUIRE_REFERENCE=1 (set in CI), where
 * a missing runtime fails the run instead of leaving it quietly green.
 */

/** True when reference runtimes must be present (CI). */
export function referenceRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.RELP_REQUIRE_REFERENCE === '1';
}

/**
 * Load a runtime with `load`; undefined (and a note on stderr) when it fails and is not required.
 * @throws Error naming the runtime and the load error when it fails and is required.
 */
export async function loadReferenceRuntime<T>(name: string, load: () => Promise<T>, env: NodeJS.ProcessEnv = process.env, note: (s: string) => void = (s) => process.stderr.write(s)): Promise<T | undefined> {
  try {
    return await load();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (referenceRequired(env)) throw new Error(`${name} reference required (RELP_REQUIRE_REFERENCE=1) but it does not load: ${why}`);
    note(`${name} reference does not load (${why}): its parity tests are skipped; set RELP_REQUIRE_REFERENCE=1 to fail instead\n`);
    return undefined;
  }
}
