/**
 * `relp circuit`: edge attribution (EAP / EAP-RelP / EAP-IG / exact), circuit selection,
 * faithfulness curves and export.
 *
 *   relp circuit [--model DIR] [--task ioi [--n N] [--seed S] | --dataset FILE]
 *     --method eap|eap-relp|eap-ig|exact[,more] [--rules P] [--ig-steps k]
 *     [--edges N | --threshold T] [--selection topn|greedy] [--ablation corrupt|mean|zero]
 *     [--gqa grouped|per-head] --out DIR
 *     [--mib-out FILE [--mib-method M]] [--force] [--json]
 *   relp circuit [--model DIR] [--task … | --dataset FILE] [--gqa per-head] --from-mib FILE --out DIR
 *
 * Writes DIR/circuit.json and DIR/faithfulness.json (each curve with MIB's CPR and CMD), and with
 * --mib-out MIB's circuit file; --from-mib evaluates a MIB circuit file instead of scoring edges.
 * Prints a human summary on stdout (or one JSON object with --json); progress and notes go to stderr. The prompts are the same as `relp patch`
 * draws for the same --task/--n/--seed, so both can share a run folder.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { positiveInt } from '../shared.ts';
import { EDGE_METHODS, parseEdgeMethod, type EdgeMethod } from '../../circuits/attribute.ts';
import { evaluateCircuits, faithfulnessCurve, logSpacedSizes, parseAblation, reach80, type Ablation, type MeasuredCurve } from '../../circuits/faithfulness.ts';
import { circuitToJson, writeCircuitFiles } from '../../circuits/export.ts';
import { GPT2_SMALL_IOI_HEADS, gpt2SmallIoiHeads, isGpt2SmallShape, patchingReferenceHeads, type HeadRef } from '../../circuits/reference.ts';
import { runCircuit, type CircuitRunOptions } from '../../circuits/run-circuit.ts';
import { buildPlan, runPlan } from '../../sweeps/sharded-sweep.ts';
import { modelRef } from '../../sweeps/model-source.ts';
import { countEdges, pruneDangling } from '../../circuits/prune.ts';
import { graphFromModel, headId, type CircuitGraph, type GqaConvention } from '../../circuits/graph.ts';
import { checkMibGraph, fromMib, toMib, type MibCircuit } from '../../circuits/mib.ts';
import { readMibFile, writeMibFile } from '../../contracts/mib.ts';
import type { HookedTransformer } from '../../hooks/hooked-transformer.ts';
import type { PatchingData } from '../../patching/data.ts';
import type { DatasetSpec } from '../../tasks/dataset.ts';
import { loadModelWithTokenizer } from '../../hooks/load-model.ts';
import { toPatchingData } from '../../patching/data.ts';
import { barProgress, silentProgress } from '../../patching/progress.ts';
import { parseRulePreset, type RulePresetName } from '../../rules/rules.ts';
import { EDGE_GRAD_METHODS, EDGE_GROUND_TRUTH, type EdgeGradMethod, takesRules, takesSteps } from '../../methods.ts';
import { groupByLength } from '../../tasks/ioi.ts';
import { datasetRecord, datasetTask, loadDataset } from '../../tasks/dataset.ts';
import { makeProvenance, type Provenance } from '../../contracts/provenance.ts';
import { prepareRunFolder } from '../../contracts/run-folder.ts';
import { addDatasetOptions, addExecutionOptions, addTokenizerOptions, checkUnknownPairs, cliTokenizer, datasetSpec, loadForCli, type ExecutionCliOptions } from '../shared.ts';
import { num } from '../output.ts';

/** Parsed options of `relp circuit`. */
export interface CircuitCommandOptions extends ExecutionCliOptions {
  model?: string;
  task?: string;
  n: number;
  seed: number;
  corruption: 'abc' | 'swap';
  dataset?: string;
  /** Scoring methods (the first selects the circuit); absent with `fromMib`. */
  method?: EdgeMethod[];
  rules: string;
  igSteps: number;
  edges?: number;
  threshold?: number;
  selection: 'topn' | 'greedy';
  ablation: Ablation;
  curvePoints: number;
  reference: 'auto' | 'none' | 'patching' | 'gpt2-ioi';
  /** GQA convention of the edge graph: k / v targets per kv head or per query head (default grouped). */
  gqa?: GqaConvention;
  out: string;
  progress?: boolean;
  /** `--prepend-bos` / `--no-prepend-bos`; undefined: the tokenizer's template decides. */
  prependBos?: boolean;
  /** `--strict`: unknown words in the prompts are an error, not a warning. */
  strict?: boolean;
  /** Local threads for the edge scores (default: cores for exact; the gradient methods run in this thread unless given). */
  workers?: number;
  /** redis://HOST:PORT/NAME: score edges on `relp worker` processes. */
  queue?: string;
  /** Exact edges per shard. */
  shardEdges?: number;
  /** Prompt pairs per EAP / EAP-RelP / EAP-IG shard (with --workers or --queue). */
  shardPrompts?: number;
  /** Start a new run in `out` even if it holds results for other prompts. */
  force?: boolean;
  json?: boolean;
  /** `--mib-out FILE`: also write the circuit as MIB's circuit-localization JSON. */
  mibOut?: string;
  /** `--mib-method`: whose scores `mibOut` holds (default the first method). */
  mibMethod?: EdgeMethod;
  /** `--from-mib FILE`: evaluate a MIB circuit file instead of scoring edges. */
  fromMib?: string;
}

function nonNegativeNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got ${JSON.stringify(v)}`);
  return n;
}

function methodList(v: string): EdgeMethod[] {
  const ms = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (ms.length === 0) throw new InvalidArgumentError(`give at least one method (${EDGE_METHODS.join(', ')})`);
  try {
    return [...new Set(ms.map(parseEdgeMethod))];
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** `--rules` as a preset, when one of the methods takes rules (a bad name is an error then); otherwise undefined. */
function cliRules(opts: CircuitCommandOptions): RulePresetName | undefined {
  return takesRules(opts.method ?? []) ? parseRulePreset(opts.rules) : undefined;
}

/** Refuse flag combinations before loading anything. */
function checkCircuitFlags(opts: CircuitCommandOptions): void {
  if (opts.edges !== undefined && opts.threshold !== undefined) throw new Error('give either --edges or --threshold, not both');
  if (opts.fromMib !== undefined) {
    if (opts.method?.length) throw new Error('give either --method (score and select a circuit) or --from-mib FILE (evaluate that file\'s circuit), not both');
    if (opts.mibOut !== undefined || opts.mibMethod !== undefined) throw new Error('--mib-out and --mib-method write the circuit of a --method run; --from-mib reads a circuit that is already in MIB\'s format');
    if (opts.edges !== undefined || opts.threshold !== undefined) throw new Error('--edges and --threshold select a circuit from scores; with --from-mib the circuit is the file\'s in_graph edges');
    return;
  }
  if (!opts.method?.length) throw new Error(`give --method (${EDGE_METHODS.join(', ')}) or --from-mib FILE`);
  if (opts.mibMethod !== undefined && opts.mibOut === undefined) throw new Error('--mib-method picks the scores --mib-out writes: give --mib-out FILE too');
  if (opts.mibMethod !== undefined && !opts.method.includes(opts.mibMethod)) throw new Error(`--mib-method ${opts.mibMethod} is not one of --method (${opts.method.join(', ')})`);
}

/** The model, prompts and provenance a circuit run works on. */
interface CircuitInputs {
  loaded: Awaited<ReturnType<typeof loadModelWithTokenizer>>;
  model: HookedTransformer;
  graph: CircuitGraph;
  data: PatchingData;
  provenance: Provenance;
  spec: DatasetSpec;
}

/** Run the command (also called by tests). Returns the summary printed to stdout. */
export async function runCircuitCommand(opts: CircuitCommandOptions): Promise<CircuitSummary> {
  const spec = datasetSpec(opts);
  checkCircuitFlags(opts);
  cliRules(opts); // fail early on a bad preset
  const loaded = await loadForCli(opts.model, opts);
  const { model } = loaded;
  const tokenizer = cliTokenizer(loaded.tokenizer, opts);
  try {
    const graph = graphFromModel(model, { gqa: opts.gqa });
    // MIB refusals (grouped-query model, a bad file) come before any compute.
    if (opts.mibOut !== undefined) checkMibGraph(graph);
    const mib = opts.fromMib !== undefined ? fromMib(readMibFile(opts.fromMib), graph, model.cfg, opts.fromMib) : undefined;
    // The same pairs `relp patch` draws for these options (one implementation: tasks/dataset.ts).
    const pairs = loadDataset(tokenizer, spec);
    checkUnknownPairs(tokenizer, pairs, opts.strict);
    if (spec.kind === 'jsonl') {
      const groups = groupByLength(pairs);
      if (groups.length > 1) {
        throw new Error(`${spec.path}: prompts tokenize to ${groups.length} different lengths (${groups.map((g) => `${g.length}: ${g.pairs.length}`).join(', ')}); a circuit run needs one length`);
      }
    }
    const data = toPatchingData(pairs);
    const { task: taskName, seed } = datasetTask(spec);
    const provenance = makeProvenance(taskName, seed, pairs, model);
    // Refuse before any compute when the folder holds another run.
    prepareRunFolder(opts.out, provenance, { force: opts.force, facts: { n: pairs.length, corruption: datasetRecord(spec).corruption, model: loaded.path } });
    const inputs: CircuitInputs = { loaded, model, graph, data, provenance, spec };
    return mib ? evaluateMibCircuit(opts, inputs, mib) : await findCircuit(opts, inputs);
  } finally {
    model.dispose();
  }
}

/** Reference heads for the head-level ROC AUC, per --reference, with their names (by role for GPT-2 small's IOI heads). */
async function referenceHeadsFor(opts: CircuitCommandOptions, { model, data, spec }: CircuitInputs): Promise<{ heads?: HeadRef[]; source: string | null; summary: ReferenceHeads | null }> {
  const ref = opts.reference;
  const names = (hs: HeadRef[]) => hs.map(([l, h]) => headId(l, h));
  if (ref === 'gpt2-ioi' || (ref === 'auto' && spec.kind === 'ioi' && isGpt2SmallShape(model.cfg))) {
    const source = 'gpt2-small IOI heads (Wang et al. 2022)';
    const roles = Object.fromEntries(Object.entries(GPT2_SMALL_IOI_HEADS).map(([role, hs]) => [role, names(hs)]));
    return { heads: gpt2SmallIoiHeads(), source, summary: { source, heads: names(gpt2SmallIoiHeads()), roles } };
  }
  if (ref === 'patching' || ref === 'auto') {
    const source = 'activation patching of z (|effect| ≥ 10% of the largest)';
    const heads = (await patchingReferenceHeads(model, data)).heads;
    return { heads, source, summary: { source, heads: names(heads), roles: null } };
  }
  return { source: null, summary: null };
}

/**
 * Edge scores computed as shards: exact edges always (threads or a queue, resumable from
 * OUT/progress.json), the gradient methods only when --workers or --queue asks for it.
 */
async function shardedScores(opts: CircuitCommandOptions, methods: EdgeMethod[], { loaded, data, graph }: CircuitInputs): Promise<CircuitRunOptions['precomputed']> {
  if (methods.includes('exact')) {
    process.stderr.write(`relp circuit: exact edge patching runs one patched forward per edge (${graph.nEdges} edges); meant for small models\n`);
  }
  if (opts.workers !== undefined && opts.queue !== undefined) throw new Error('give either --workers (local threads) or --queue (relp worker processes), not both');
  const spread = opts.workers !== undefined || opts.queue !== undefined;
  const edgeGrad = spread ? methods.filter((m): m is EdgeGradMethod => m !== EDGE_GROUND_TRUTH) : [];
  if (!methods.includes('exact') && edgeGrad.length === 0) return undefined;
  const plan = buildPlan(loaded, modelRef(opts.model), data.pairs, {
    edges: methods.includes('exact'),
    edgesPerShard: opts.shardEdges,
    edgeGrad,
    promptsPerShard: opts.shardPrompts,
    igSteps: opts.igSteps,
    rules: cliRules(opts),
    gqa: opts.gqa,
  });
  const r = await runPlan(plan, loaded, { workers: opts.workers, queue: opts.queue, out: opts.out, progress: opts.progress === false ? silentProgress : barProgress() });
  const precomputed: NonNullable<CircuitRunOptions['precomputed']> = {};
  if (r.edges) precomputed.exact = { method: 'exact', scores: r.edges, baselines: r.baselines, seconds: r.seconds.exact ?? 0 };
  for (const m of edgeGrad) {
    const g = r.edgeGrad![m];
    precomputed[m] = { method: m, scores: g.scores, baselines: { clean: g.clean, corrupt: g.corrupt }, seconds: r.seconds[m] ?? 0 };
  }
  return precomputed;
}

/** `--method`: score edges, select and evaluate the circuit, write circuit.json, faithfulness.json (and --mib-out). */
async function findCircuit(opts: CircuitCommandOptions, inputs: CircuitInputs): Promise<CircuitSummary> {
  const { loaded, model, data, provenance, graph, spec } = inputs;
  const methods = opts.method!;
  const reference = await referenceHeadsFor(opts, inputs);
  const run = runCircuit(model, data, {
    precomputed: await shardedScores(opts, methods, inputs),
    methods,
    rules: cliRules(opts),
    igSteps: opts.igSteps,
    edges: opts.edges,
    threshold: opts.threshold,
    selection: opts.selection,
    ablation: opts.ablation,
    curvePoints: opts.curvePoints,
    referenceHeads: reference.heads,
    progress: opts.progress === false ? silentProgress : barProgress(),
    gqa: opts.gqa,
  });
  const scores: Record<string, Float32Array> = {};
  for (const m of methods) scores[m] = run.scores[m]!.scores;
  const circuit = circuitToJson({
    provenance,
    graph: run.graph,
    mask: run.mask,
    scores,
    model: loaded.path,
    task: provenance.task,
    pruningThreshold: opts.threshold ?? null,
    extra: {
      model_sha256: loaded.sha256,
      prompts: data.clean.length,
      corruption: datasetRecord(spec).corruption,
      positions: data.pos,
      ablation: opts.ablation,
      gqa: run.graph.gqa,
      rules: cliRules(opts),
      ig_steps: takesSteps(methods) ? opts.igSteps : undefined,
      selected_edges: run.selected,
      recovered: run.circuitRecovered,
      baselines: run.scores[methods[0]]!.baselines,
      reference_heads: reference.heads ?? null,
      reference_source: reference.source,
      head_auc: run.headAuc ?? null,
      reference_recovered: run.referenceRecovered ?? null,
    },
  });
  const paths: CircuitSummary['out'] = writeCircuitFiles(opts.out, circuit, run.curves);
  if (opts.mibOut !== undefined) paths.mib = writeMibFile(opts.mibOut, toMib(graph, scores[opts.mibMethod ?? methods[0]], run.mask, model.cfg));
  return {
    out: paths,
    provenance,
    prompts: data.clean.length,
    edges_total: run.graph.nEdges,
    circuit_edges: countEdges(run.mask),
    circuit_recovered: run.circuitRecovered,
    selection: { method: methods[0], how: opts.threshold !== undefined ? 'threshold' : opts.selection, value: opts.threshold ?? opts.edges ?? null, edges_before_pruning: run.selected },
    ablation: opts.ablation,
    curves: curveSizes(run.curves[0]),
    methods: Object.fromEntries(run.curves.map((c) => [c.method, methodSummary(c, run.seconds[c.method], run.headAuc?.[c.method as EdgeMethod] ?? null)])),
    reference: reference.summary,
    reference_recovered: run.referenceRecovered ?? null,
  };
}

/** One method's row of the summary. */
function methodSummary(c: MeasuredCurve, seconds: { scoring: number; curve: number }, headAuc: number | null): CircuitSummary['methods'][string] {
  const reach = reach80(c.curve);
  return { auc: c.auc, cpr: c.mib?.cpr ?? null, cmd: c.mib?.cmd ?? null, edges_for_80: reach?.first ?? null, edges_below_80: reach?.previous ?? null, seconds, head_auc: headAuc };
}

/** The circuit sizes a curve measured (its endpoints, 0 and every edge, are defined, not measured), and how it chose each circuit. */
function curveSizes(c: MeasuredCurve): CircuitSummary['curves'] {
  return { sizes: c.curve.slice(1, -1).map((p) => p.edges), selection: c.selection === 'greedy' ? 'greedy' : 'topn' };
}

/** Method name of the curve and scores of a circuit read with --from-mib. */
export const MIB_FILE_METHOD = 'mib-file';

/**
 * `--from-mib`: the file's in_graph edges are the circuit (dangling edges dropped, as MIB's
 * evaluation prunes), its scores give the curve with CPR and CMD; writes circuit.json and
 * faithfulness.json like a --method run.
 */
function evaluateMibCircuit(opts: CircuitCommandOptions, { loaded, model, graph, data, provenance, spec }: CircuitInputs, mib: MibCircuit): CircuitSummary {
  const path = opts.fromMib!;
  if (mib.missing > 0) process.stderr.write(`relp circuit: ${path} lists ${graph.nEdges - mib.missing} of this model's ${graph.nEdges} edges; the other ${mib.missing} count as score 0, not in the circuit\n`);
  const mask = pruneDangling(graph, mib.inCircuit);
  const t0 = performance.now();
  const recovered = evaluateCircuits(model, graph, data, [mask], { ablation: opts.ablation }).recovered[0];
  const curve = faithfulnessCurve(model, graph, data, mib.scores, { method: MIB_FILE_METHOD, ablation: opts.ablation, sizes: logSpacedSizes(graph.nEdges, opts.curvePoints), selection: opts.selection, mib: true });
  const seconds = { scoring: 0, curve: (performance.now() - t0) / 1000 };
  const inGraph = countEdges(mib.inCircuit);
  const circuit = circuitToJson({
    provenance,
    graph,
    mask,
    scores: { [MIB_FILE_METHOD]: mib.scores },
    model: loaded.path,
    task: provenance.task,
    extra: { model_sha256: loaded.sha256, prompts: data.clean.length, corruption: datasetRecord(spec).corruption, positions: data.pos, ablation: opts.ablation, mib_file: path, mib_in_graph_edges: inGraph, recovered },
  });
  return {
    out: writeCircuitFiles(opts.out, circuit, [curve]),
    provenance,
    prompts: data.clean.length,
    edges_total: graph.nEdges,
    circuit_edges: countEdges(mask),
    circuit_recovered: recovered,
    selection: null,
    ablation: opts.ablation,
    curves: curveSizes(curve),
    methods: { [MIB_FILE_METHOD]: methodSummary(curve, seconds, null) },
    reference: null,
    reference_recovered: null,
    mib_file: { path, in_graph_edges: inGraph, missing_edges: mib.missing },
  };
}

/** Register `circuit` on the program. */
export function register(program: Command): void {
  const cmd = program
    .command('circuit')
    .description('Find a circuit by edge attribution (EAP, EAP-RelP, EAP-IG or exact edge patching) and measure its faithfulness')
    .option('--model <dir>', 'model folder (default: the embedded IOI model)');
  addDatasetOptions(cmd)
    .option('--method <list>', `edge scoring method(s), comma-separated: ${EDGE_METHODS.join(', ')}; the first selects the circuit (or give --from-mib)`, methodList)
    .option('--rules <preset>', 'LRP rule preset for eap-relp', 'relp')
    .option('--ig-steps <k>', 'interpolation steps for eap-ig', positiveInt, 5)
    .option('--edges <n>', 'circuit size in edges (default 5% of all edges)', positiveInt)
    .option('--threshold <t>', 'keep edges with |score| ≥ t instead of a fixed count', nonNegativeNumber)
    .addOption(new Option('--selection <how>', 'how a fixed-size circuit is chosen').choices(['topn', 'greedy']).default('topn'))
    .option('--ablation <kind>', 'what edges outside the circuit carry: corrupt, mean or zero', (v: string) => {
      try {
        return parseAblation(v);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    }, 'corrupt')
    .option('--curve-points <k>', 'number of log-spaced circuit sizes on the faithfulness curve', positiveInt, 10)
    .addOption(new Option('--gqa <convention>', 'grouped-query attention: one k / v target per kv head (grouped) or per query head (per-head, as TransformerLens ungrouping and MIB)').choices(['grouped', 'per-head']).default('grouped'))
    .addOption(new Option('--reference <src>', 'reference heads for the head-level ROC AUC').choices(['auto', 'none', 'patching', 'gpt2-ioi']).default('auto'))
    .requiredOption('--out <dir>', 'output folder for circuit.json and faithfulness.json')
    .option('--no-progress', 'no progress bar on stderr')
    .option('--force', 'start a new run in --out even if it holds results for other prompts or another model', false)
    .option('--json', 'print one JSON object instead of the summary', false)
    .option('--workers <n>', `score edges on worker threads, each with its own model (${EDGE_GROUND_TRUTH}: default the number of cores, capped by memory; ${EDGE_GRAD_METHODS.join(', ')}: only when given)`, positiveInt)
    .option('--queue <url>', 'score edges on `relp worker` processes: redis://HOST:PORT/NAME')
    .option('--shard-edges <n>', 'exact: edges per shard', positiveInt, 64)
    .option('--shard-prompts <n>', `${EDGE_GRAD_METHODS.join(', ')} with --workers/--queue: prompt pairs per shard`, positiveInt, 8)
    .option('--mib-out <file>', "also write the circuit as MIB's circuit-localization JSON (every edge's score and in_graph)")
    .option('--mib-method <m>', 'whose scores --mib-out writes (default: the first --method)', (v: string) => methodList(v)[0])
    .option('--from-mib <file>', "instead of --method: evaluate a MIB circuit file (from any tool) on this model and data; its in_graph edges are the circuit, its scores rank the curve");
  addExecutionOptions(addTokenizerOptions(cmd))
    .action(async (opts: CircuitCommandOptions) => {
      const summary = await runCircuitCommand(opts);
      process.stdout.write(opts.json ? JSON.stringify(summary, null, 2) + '\n' : formatCircuitSummary(summary));
    });
}

/** The reference heads of a summary: where they come from, their names (`a9.h6`) and, for GPT-2 small's IOI heads, their roles. */
export interface ReferenceHeads {
  source: string;
  heads: string[];
  /** Role → heads (name mover, S-inhibition, …), or null when the heads have no roles. */
  roles: Record<string, string[]> | null;
}

/** The summary {@link runCircuitCommand} returns (`--json` prints it). */
export interface CircuitSummary {
  out: { circuit: string; faithfulness: string; mib?: string };
  provenance: Provenance;
  prompts: number;
  edges_total: number;
  /** Edges of the circuit, after dropping dangling ones. */
  circuit_edges: number;
  /** Faithfulness of the circuit: (m(C) − m(∅)) / (m(full) − m(∅)). */
  circuit_recovered: number;
  /**
   * How the circuit was chosen from the first method's scores: top-n, greedy (n edges) or
   * threshold (|score| ≥ value), and how many edges that gave before dangling ones were dropped;
   * null for a circuit read with --from-mib.
   */
  selection: { method: string; how: 'topn' | 'greedy' | 'threshold'; value: number | null; edges_before_pruning: number } | null;
  /** What edges outside the circuit carry. */
  ablation: Ablation;
  /** The circuit sizes n the faithfulness curves measured, each circuit n edges chosen by |score| (`selection`), then dangling edges dropped. */
  curves: { sizes: number[]; selection: 'topn' | 'greedy' };
  /**
   * Per method: faithfulness AUC, MIB's CPR (↑) and CMD (↓), where the curve first reaches 80%
   * (`edges_for_80`: the first measured size at or above it; `edges_below_80`: the measured size
   * before it, below 80%), time, head ROC AUC.
   */
  methods: Record<string, { auc: number; cpr: number | null; cmd: number | null; edges_for_80: number | null; edges_below_80: number | null; seconds: { scoring: number; curve: number }; head_auc: number | null }>;
  /** The reference heads of the head ROC AUC and of `reference_recovered` (null: none). */
  reference: ReferenceHeads | null;
  /** Faithfulness of the reference heads as a node circuit: every other head's outputs ablated. */
  reference_recovered: number | null;
  /** With --from-mib: the file, its in_graph edge count, and the model's edges it does not list. */
  mib_file?: { path: string; in_graph_edges: number; missing_edges: number };
}

/** Where a curve first reaches 80%: "a–b" between the measured sizes a−1 and b, one number when nothing lies between them. */
function reachCell(r: CircuitSummary['methods'][string]): string {
  if (r.edges_for_80 === null || r.edges_below_80 === null) return '–';
  return r.edges_below_80 + 1 === r.edges_for_80 ? String(r.edges_for_80) : `${r.edges_below_80 + 1}–${r.edges_for_80}`;
}

/** The first line of a summary: which circuit, chosen how, on what, and what it recovers. */
function circuitLine(s: CircuitSummary): string {
  const on = `on ${s.prompts} prompts (task ${s.provenance.task}${s.provenance.seed === null ? '' : `, seed ${s.provenance.seed}`})`;
  const recovers = `recovers ${num(s.circuit_recovered)} of the metric (faithfulness, edges outside it carrying ${s.ablation} values)`;
  if (s.mib_file) return `circuit of ${s.mib_file.path}: ${s.mib_file.in_graph_edges} in_graph edges, ${s.circuit_edges} of ${s.edges_total} after dropping dangling ones, ${on}; ${recovers}`;
  const sel = s.selection;
  const n = sel?.edges_before_pruning;
  const how = !sel ? '' : sel.how === 'threshold' ? `the ${n} with |${sel.method} score| ≥ ${sel.value}` : sel.how === 'greedy' ? `${n} grown greedily from the logits by |${sel.method} score|` : `the top ${n} by |${sel.method} score|`;
  const chosen = sel ? ` (${how}, then ${sel.edges_before_pruning - s.circuit_edges} dangling edges dropped)` : '';
  return `circuit: ${s.circuit_edges} of ${s.edges_total} edges${chosen} ${on}; ${recovers}`;
}

/** The reference heads' line: the heads by name (by role for GPT-2 small), and what they recover as a node circuit. */
function referenceLine(s: CircuitSummary): string | null {
  if (s.reference_recovered === null) return null;
  const ref = s.reference;
  const heads = !ref ? '' : ref.roles ? Object.entries(ref.roles).map(([role, hs]) => `${role} ${hs.join(', ')}`).join('; ') : ref.heads.join(', ');
  const what = ref ? `, ${ref.source}: ${heads};` : '';
  return `reference heads${what} as a node circuit (every other head's outputs carrying ${s.ablation} values) they recover ${num(s.reference_recovered)}`;
}

/** The human summary of a circuit run. */
export function formatCircuitSummary(s: CircuitSummary): string {
  const lines = [
    circuitLine(s),
    '',
    `${'method'.padEnd(10)} ${'AUC'.padStart(7)} ${'CPR'.padStart(7)} ${'CMD'.padStart(7)} ${'80% at n'.padStart(10)} ${'head AUC'.padStart(9)} ${'seconds'.padStart(8)}`,
    ...Object.entries(s.methods).map(
      ([m, r]) =>
        `${m.padEnd(10)} ${num(r.auc).padStart(7)} ${num(r.cpr).padStart(7)} ${num(r.cmd).padStart(7)} ${reachCell(r).padStart(10)} ${num(r.head_auc).padStart(9)} ${num(r.seconds.scoring + r.seconds.curve, 1).padStart(8)}`,
    ),
    '',
    'AUC: area under faithfulness over the fraction of edges kept (0–100%). CPR, CMD (MIB): area under',
    'faithfulness f, and under |1 − f|, at 0.1%–100% of the edges; higher CPR and lower CMD are better',
    '(a perfect circuit has CPR 1, CMD 0).',
    `80% at n: the first measured circuit size n reaching 80% faithfulness (${s.curves.selection === 'greedy' ? 'n edges grown greedily' : 'the top n edges'} by |score|,`,
    `before dangling edges are dropped); "a–b": the curve crosses 80% between the measured sizes a−1 (below) and b.`,
    `The curve measures n = ${s.curves.sizes.join(', ')} only.`,
  ];
  if (s.reference) lines.push('head AUC: ROC AUC of the heads ranked by their summed |edge score|, the reference heads being the positives.');
  lines.push('seconds: scoring the edges plus measuring the curve.');
  const ref = referenceLine(s);
  if (ref) lines.push('', ref);
  lines.push('', `wrote ${s.out.circuit} and ${s.out.faithfulness}${s.out.mib ? `, and the MIB circuit file ${s.out.mib}` : ''}`);
  return lines.join('\n') + '\n';
}
