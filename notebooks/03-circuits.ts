// %% [markdown]
// # 3. Circuit discovery and faithfulness
//
// Notebook 2 scored *components*. A **circuit** is a set of *edges*: which component reads which
// other component's output. At the granularity of EAP-IG (Hanna et al. 2024) the nodes are the
// input embedding, every attention head `a{l}.h{h}`, every MLP `m{l}` and the logits; each head has
// three inputs (q, k, v), so an edge is e.g. `a0.h1 → a2.h3<k>`.
//
// - **EAP** scores an edge u → v by `(a_clean(u) − a_corrupt(u)) · ∂m/∂(input of v)`, all edges from
//   one backward pass (AtP at the level of edges).
// - **EAP-RelP** takes that gradient through the LRP rules (RelP at the level of edges).
// - **EAP-IG** averages the gradient over k interpolations between the corrupt and clean inputs.
// - **exact** patches each edge for real (one forward per edge, batched): the ground truth.
//
// **Faithfulness** of a circuit C: run the model with every edge *outside* C carrying its corrupt
// activation, and report `(m(C) − m(∅)) / (m(full) − m(∅))`. A curve over circuit size shows how
// few edges a method needs to recover the behaviour. At the end we open the result in the viewer.

// %%
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadModelWithTokenizer, ioiSameLength, toPatchingData, runSweep, makeProvenance } from 'relp';
import {
  buildGraph,
  edgeName,
  attributeEdges,
  exactEdgeScores,
  evaluateCircuits,
  faithfulnessCurve,
  logSpacedSizes,
  nodeCircuitFaithfulness,
  countEdges,
  pruneDangling,
  selectEdges,
  headRocAuc,
  patchingReferenceHeads,
  circuitToJson,
  writeCircuitFiles,
  type MeasuredCurve,
} from 'relp/circuits';
import { startViewer } from 'relp/viz';
import { sampleCorrelation } from 'simple-statistics';
import { NotebookOutputs, lines, scatterPanels } from './lib/plots.ts';

const backend = await initBackend();
const startTensors = tf.memory().numTensors;
const loaded = await loadModelWithTokenizer(process.env.RELP_NOTEBOOK_MODEL || undefined); // default: the embedded model
const { model, tokenizer } = loaded;
const cfg = model.cfg;
const out = new NotebookOutputs('03-circuits');
const pairs = ioiSameLength(tokenizer, 16, 1, 'abc');
const data = toPatchingData(pairs);
const graph = buildGraph(cfg.nLayers, cfg.nHeads);
console.log(`backend ${backend}; ${cfg.nLayers} layers × ${cfg.nHeads} heads → ${graph.nodes.length} nodes, ${graph.targets.length} node inputs, ${graph.nEdges} edges`);
console.log(`${pairs.length} IOI pairs (ABC corruption, seed 1), ${data.pos} tokens each`);

// %% [markdown]
// ## Edge scores
//
// `attributeEdges(model, graph, data, {method})` returns one score per edge (in graph order). On a
// model this small we can afford the exact scores too, and check the estimates against them.

// %%
const methods = ['eap', 'eap-relp', 'eap-ig'] as const;
const edgeScores = Object.fromEntries(methods.map((m) => [m, attributeEdges(model, graph, data, { method: m, rules: 'relp', igSteps: 5 })]));
const exact = exactEdgeScores(model, graph, data);
for (const m of methods) console.log(`${m.padEnd(9)} ${edgeScores[m].seconds.toFixed(2)} s`);
console.log(`exact     ${exact.seconds.toFixed(2)} s (${graph.nEdges} edge patches)`);
const truth = Array.from(exact.scores);
const r = Object.fromEntries(methods.map((m) => [m, sampleCorrelation(truth, Array.from(edgeScores[m].scores))]));
for (const m of methods) console.log(`Pearson r of ${m} with exact edge patching: ${r[m].toFixed(3)}`);
const edgeLabels = Array.from({ length: graph.nEdges }, (_, e) => edgeName(graph, e));
await out.show(
  scatterPanels(
    methods.map((m) => ({ title: `${m} (r = ${r[m].toFixed(3)})`, x: truth, y: Array.from(edgeScores[m].scores), text: edgeLabels })),
    { title: 'Edge scores against exact edge patching', xTitle: 'exact (patched metric − corrupt)', yTitle: 'estimate' },
  ),
  'edge-scores',
);
const topExact = truth.map((v, e) => [Math.abs(v), e] as const).sort((a, b) => b[0] - a[0]).slice(0, 8);
console.log('strongest edges (exact):');
for (const [, e] of topExact) console.log(`  ${edgeLabels[e].padEnd(22)} exact ${truth[e].toFixed(3).padStart(7)}   eap ${edgeScores.eap.scores[e].toFixed(3).padStart(7)}   eap-relp ${edgeScores['eap-relp'].scores[e].toFixed(3).padStart(7)}`);

// %% [markdown]
// **Reading it.** On this model all three estimates track exact edge patching closely (r ≈ 0.99
// when this was written; the cell prints the current values), while costing one backward pass (EAP,
// EAP-RelP) or k of them (EAP-IG) instead of one forward per edge. When this was written the
// strongest edges ran from the input into the value input of head 0.3 (the head that copies the
// repeated name S2 to the final position, see notebook 1), on through MLP 0, MLP 2 and head 2.1 (the
// name mover) to the logits.

// %% [markdown]
// ## Faithfulness curves
//
// For each method and each circuit size n (log-spaced), keep the top-n edges by |score|, prune edges
// left dangling, and measure how much of the clean behaviour the circuit recovers. A better ranking
// reaches 1 with fewer edges (larger area under the curve).

// %%
const sizes = logSpacedSizes(graph.nEdges, 10);
const curves: MeasuredCurve[] = [...methods, 'exact' as const].map((m) =>
  faithfulnessCurve(model, graph, data, m === 'exact' ? exact.scores : edgeScores[m].scores, { method: m, sizes }),
);
for (const c of curves) console.log(`${c.method.padEnd(9)} AUC ${c.auc.toFixed(3)}; 80% recovered with ${c.edges_for_80 ?? '—'} edges`);
await out.show(
  lines(
    curves.map((c) => ({ name: c.method, x: c.curve.map((p) => Math.max(p.edges, 1)), y: c.curve.map((p) => p.recovered) })),
    { title: 'Faithfulness: fraction of the logit difference recovered by the top-n edges', xTitle: 'edges in the circuit (log scale)', yTitle: 'recovered', logX: true },
  ),
  'faithfulness',
);

// %% [markdown]
// **Reading it.** The curves rise steeply: a small fraction of the edges recovers most of the logit
// difference. With estimates this close to exact patching the rankings, and so the areas under the
// curves, are about equal here. On larger models they separate (on GPT-2 small, EAP-IG's
// Greater-Than notebook reports 91% recovered with the top 200 edges of EAP-IG against 81% for EAP).

// %% [markdown]
// ## One circuit, and a check against the heads that activation patching finds
//
// Select 5% of the edges by EAP-RelP, prune, and measure its faithfulness. As a reference we take
// the heads whose per-head activation patching effect is at least 10% of the largest (on GPT-2 small
// one would use the IOI heads of Wang et al.), and ask two questions: does the edge ranking put
// those heads first (head-level ROC AUC), and how much does a circuit of only those heads recover?

// %%
const nEdges = Math.max(1, Math.round(0.05 * graph.nEdges));
const mask = pruneDangling(graph, selectEdges(graph, edgeScores['eap-relp'].scores, 'topn', nEdges));
const recovered = evaluateCircuits(model, graph, data, [mask]).recovered[0];
console.log(`EAP-RelP circuit: ${countEdges(mask)} edges (of ${graph.nEdges}) recover ${(100 * recovered).toFixed(1)}% of the logit difference`);
const ref = await patchingReferenceHeads(model, data);
console.log(`reference heads (activation patching): ${ref.heads.map(([l, h]) => `${l}.${h}`).join(', ')}`);
for (const m of methods) console.log(`head-level ROC AUC of ${m.padEnd(8)} ${headRocAuc(graph, edgeScores[m].scores, ref.heads).toFixed(3)}`);
const nodeCircuit = nodeCircuitFaithfulness(model, graph, data, ref.heads);
console.log(`the reference heads alone (all other heads' outputs corrupted) recover ${(100 * nodeCircuit.recovered).toFixed(1)}%`);

// %% [markdown]
// **Reading it.** The circuit-level and the component-level views agree when the edge scores rank
// the heads that activation patching singles out first (ROC AUC near 1), and a small circuit
// recovers most of the behaviour. The node-level check keeps only the reference heads (all other
// heads' outputs corrupted, MLPs untouched), so it measures how much of the behaviour runs through
// those heads.

// %% [markdown]
// ## Open it in the viewer
//
// A run folder holds `run.json` (component scores, as in notebook 2), `circuit.json` (nodes and
// links in the attribution-graph format of circuit-tracer / Neuronpedia, with every method's score)
// and `faithfulness.json` (the curves). `relp view DIR` serves such folders; here we start the same
// viewer from the library, check its pages answer, and print the URL.

// %%
const runsDir = join(out.dir, 'runs');
const runDir = join(runsDir, 'ioi-circuit');
await runSweep(loaded, pairs, { methods: ['activation', 'atp', 'relp'], components: 'attn_out,mlp_out,z', rules: 'relp', out: runDir, dataset: { kind: 'ioi', seed: 1, corruption: 'abc' } });
const circuit = circuitToJson({
  graph,
  mask,
  scores: { 'eap-relp': edgeScores['eap-relp'].scores, eap: edgeScores.eap.scores, 'eap-ig': edgeScores['eap-ig'].scores, exact: exact.scores },
  model: loaded.path,
  task: 'ioi',
  // The same provenance runSweep recorded in run.json: one folder, one set of prompts.
  provenance: makeProvenance('ioi', 1, pairs, loaded.model),
  extra: { prompts: pairs.length, recovered, reference_heads: ref.heads },
});
const files = writeCircuitFiles(runDir, circuit, curves);
console.log(`wrote ${out.rel('runs/ioi-circuit/run.json')}, ${out.rel('runs/ioi-circuit/circuit.json')}, ${out.rel('runs/ioi-circuit/faithfulness.json')} (${files.circuit.length > 0 ? 'ok' : ''})`);

const viewer = await startViewer({ runsDir, port: 0 }); // 127.0.0.1 only; port 0 = any free port
for (const page of ['', 'runs/ioi-circuit', 'runs/ioi-circuit/circuit', 'api/runs/ioi-circuit/circuit']) {
  const res = await fetch(viewer.url + page);
  await res.arrayBuffer();
  console.log(`GET /${page.padEnd(30)} → ${res.status}`);
  if (!res.ok) throw new Error(`viewer page /${page} answered ${res.status}`);
}
console.log(`circuit viewer: ${viewer.url}runs/ioi-circuit/circuit`);

// %% [markdown]
// In an interactive session, open the URL above; the viewer runs until the next cell closes it.
// (From a shell: `npx relp view notebooks/outputs/03-circuits/runs`.)

// %%
await viewer.close();
model.dispose();
const leaked = tf.memory().numTensors - startTensors;
console.log(`viewer closed; tensors left over: ${leaked}`);
if (leaked !== 0) throw new Error(`${leaked} tensors leaked`);
