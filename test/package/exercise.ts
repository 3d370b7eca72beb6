/**
 * What a library user does with relp, written against the module namespaces it is given, so the
 * same code runs twice: in the test process on src/ (`import * as relp from '../../src/index.ts'`)
 * and, transpiled to plain JavaScript, in a consumer project on the installed tarball
 * (`import * as relp from 'relp'`). The pack test compares the two results.
 *
 * Only `import type` here: the transpiled copy must import nothing (the consumer has no src/).
 */
import type * as Tf from '@tensorflow/tfjs';
import type * as Relp from '../../src/index.ts';
import type * as Circuits from '../../src/circuits/index.ts';

/** The public names each entry point must export (a subset: the ones the README and notebooks use). */
export const PUBLIC_NAMES = {
  relp: ['initBackend', 'HookedTransformer', 'loadModelWithTokenizer', 'ioiSameLength', 'toPatchingData', 'activationPatch', 'attributionPatch', 'ATP', 'ATP_STAR', 'relpMethod', 'runSweep', 'correlationTable', 'formatCorrelationTable', 'RULE_PRESETS', 'randomStateDict'],
  circuits: ['runCircuit', 'buildGraph', 'attributeEdges', 'faithfulnessCurve', 'countEdges', 'selectEdges', 'circuitToJson', 'writeCircuitFiles'],
  viz: ['startViewer', 'createViewerApp'],
} as const;

/** Numbers from one pass over the public API, on 4 IOI pairs of the embedded model. */
export interface ExerciseResult {
  backend: string;
  baselines: { clean: number; corrupt: number };
  /** Activation patching, [layer][pos] for attn_out and [layer][head] for z. */
  activation: { attn_out: number[][]; z: number[][] };
  atp: { attn_out: number[][]; z: number[][] };
  relp: { attn_out: number[][]; z: number[][] };
  /** Faithfulness AUC per edge method, and the circuit's edge count. */
  circuit: { auc: Record<string, number>; edges: number; recovered: number };
  /** tf.memory().numTensors after the calls minus before (0: nothing leaked). */
  leakedTensors: number;
}

/** Run activation patching, AtP, RelP and a circuit through the public API. */
export async function exercise(tf: typeof Tf, relp: typeof Relp, circuits: typeof Circuits): Promise<ExerciseResult> {
  const backend = await relp.initBackend('wasm'); // one backend on both sides, so the numbers can match
  const before = tf.memory().numTensors;
  const { model, tokenizer } = await relp.loadModelWithTokenizer(); // the embedded model: it must ship
  const data = relp.toPatchingData(relp.ioiSameLength(tokenizer, 4, 0, 'abc'));
  const components: Relp.ComponentName[] = ['attn_out', 'z'];
  const act = await relp.activationPatch(model, data, { components });
  const est = relp.attributionPatch(model, data, { components, methods: [relp.ATP, relp.relpMethod('relp')] });
  const run = circuits.runCircuit(model, data, { methods: ['eap-relp', 'eap'], edges: 12, curvePoints: 3 });
  const grids = (s: Relp.MethodScores) => ({ attn_out: s.attn_out!.values as number[][], z: s.z!.values as number[][] });
  const result: ExerciseResult = {
    backend,
    baselines: act.baselines,
    activation: grids(act.scores),
    atp: grids(est.scores.atp),
    relp: grids(est.scores.relp),
    circuit: { auc: Object.fromEntries(run.curves.map((c) => [c.method, c.auc])), edges: circuits.countEdges(run.mask), recovered: run.circuitRecovered },
    leakedTensors: 0,
  };
  model.dispose();
  result.leakedTensors = tf.memory().numTensors - before;
  return result;
}
