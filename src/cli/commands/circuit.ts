/**
 * `relp circuit`: edge attribution (EAP / EAP-RelP / EAP-IG / exact), circuit selection,
 * faithfulness curves and export.
 *
 *   relp circuit [--model DIR] [--task ioi [--n N] [--seed S] | --dataset FILE]
 *     --method eap|eap-relp|eap-ig|exact[,more] [--rules P] [--ig-steps k]
 *     [--edges N | --threshold T] [--selection topn|greedy] [--ablation corrupt|mean|zero]
 *     [--gqa grouped|per-head] --out DIR
 *     [--force] [--json]
 *
 * Writes DIR/circuit.json and DIR/faithfulness.json; prints a human summary on stdout (or one JSON
 * object with --json); progress and notes go to stderr. The prompts are the same as `relp patch`
 * draws for the same --task/--n/--seed, so both can share a run folder.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { positiveInt } from '../shared.ts';
import { EDGE_METHODS, parseEdgeMethod, type EdgeMethod } from '../../circuits/attribute.ts';
import type { EdgeGradMethod } from '../../sweeps/plan.ts';
import { parseAblation, type Ablation } from '../../circuits/faithfulness.ts';
import { circuitToJson, writeCircuitFiles } from '../../circuits/export.ts';
import { gpt2SmallIoiHeads, isGpt2SmallShape, patchingReferenceHeads, type HeadRef } from '../../circuits/reference.ts';
import { runCircuit, type CircuitRunOptions } from '../../circuits/run-circuit.ts';
import { buildPlan, runPlan } from '../../sweeps/sharded-sweep.ts';
import { modelRef } from '../../sweeps/model-source.ts';
import { countEdges } from '../../circuits/prune.ts';
import { buildGraph, type GqaConvention } from '../../circuits/graph.ts';
import { loadModelWithTokenizer } from '../../hooks/load-model.ts';
import { toPatchingData } from '../../patching/data.ts';
import { barProgress, silentProgress } from '../../patching/progress.ts';
import { resolveRules } from '../../rules/rules.ts';
import { groupByLength } from '../../tasks/ioi.ts';
import { datasetTask, loadDataset } from '../../tasks/dataset.ts';
import { makeProvenance, type Provenance } from '../../contracts/provenance.ts';
import { prepareRunFolder } from '../../contracts/run-folder.ts';
import { addDatasetOptions, addExecutionOptions, addTokenizerOptions, checkUnknownPairs, cliTokenizer, datasetSpec, type ExecutionCliOptions } from '../shared.ts';
import { num } from '../output.ts';

/** Parsed options of `relp circuit`. */
export interface CircuitCommandOptions extends ExecutionCliOptions {
  model?: string;
  task?: string;
  n: number;
  seed: number;
  corruption: 'abc' | 'swap';
  dataset?: string;
  method: EdgeMethod[];
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

/** Run the command (also called by tests). Returns the summary printed to stdout. */
export async function runCircuitCommand(opts: CircuitCommandOptions): Promise<CircuitSummary> {
  const spec = datasetSpec(opts);
  if (opts.edges !== undefined && opts.threshold !== undefined) throw new Error('give either --edges or --threshold, not both');
  if (opts.method.includes('eap-relp')) resolveRules(opts.rules); // fail early on a bad preset
  if (opts.streamWeights !== undefined) process.env.RELP_STREAM_WEIGHTS = opts.streamWeights ? '1' : '0';
  const loaded = await loadModelWithTokenizer(opts.model, { stream: opts.streamWeights });
  const { model } = loaded;
  const tokenizer = cliTokenizer(loaded.tokenizer, opts);
  try {
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
    prepareRunFolder(opts.out, provenance, { force: opts.force });
    let referenceHeads: HeadRef[] | undefined;
    let referenceSource: string | null = null;
    const ref = opts.reference;
    if (ref === 'gpt2-ioi' || (ref === 'auto' && spec.kind === 'ioi' && isGpt2SmallShape(model.cfg))) {
      referenceHeads = gpt2SmallIoiHeads();
      referenceSource = 'gpt2-small IOI heads (Wang et al. 2022)';
    } else if (ref === 'patching' || ref === 'auto') {
      referenceHeads = (await patchingReferenceHeads(model, data)).heads;
      referenceSource = 'activation patching of z (|effect| ≥ 10% of the largest)';
    }
    const progress = opts.progress === false ? silentProgress : barProgress();
    if (opts.method.includes('exact')) {
      // The model's own graph: the closed form counts MHA with sequential blocks only.
      const nEdges = buildGraph(model.cfg.nLayers, model.cfg.nHeads, { ...model.topology(), gqa: opts.gqa }).nEdges;
      process.stderr.write(`relp circuit: exact edge patching runs one patched forward per edge (${nEdges} edges); meant for small models\n`);
    }
    let precomputed: CircuitRunOptions['precomputed'];
    if (opts.workers !== undefined && opts.queue !== undefined) throw new Error('give either --workers (local threads) or --queue (relp worker processes), not both');
    // Exact edges always run as shards (threads or a queue, resumable from OUT/progress.json); the
    // gradient methods (a few passes each) only when --workers or --queue asks for it.
    const spread = opts.workers !== undefined || opts.queue !== undefined;
    const edgeGrad = spread ? opts.method.filter((m): m is EdgeGradMethod => m !== 'exact') : [];
    if (opts.method.includes('exact') || edgeGrad.length > 0) {
      const plan = buildPlan(loaded, modelRef(opts.model), data.pairs, {
        edges: opts.method.includes('exact'),
        edgesPerShard: opts.shardEdges,
        edgeGrad,
        promptsPerShard: opts.shardPrompts,
        igSteps: opts.igSteps,
        rules: opts.rules,
        gqa: opts.gqa,
      });
      const r = await runPlan(plan, loaded, { workers: opts.workers, queue: opts.queue, out: opts.out, progress: opts.progress === false ? silentProgress : barProgress() });
      precomputed = {};
      if (r.edges) precomputed.exact = { method: 'exact', scores: r.edges, baselines: r.baselines, seconds: r.seconds.exact ?? 0 };
      for (const m of edgeGrad) {
        const g = r.edgeGrad![m];
        precomputed[m] = { method: m, scores: g.scores, baselines: { clean: g.clean, corrupt: g.corrupt }, seconds: r.seconds[m] ?? 0 };
      }
    }
    const run = runCircuit(model, data, {
      precomputed,
      methods: opts.method,
      rules: opts.rules,
      igSteps: opts.igSteps,
      edges: opts.edges,
      threshold: opts.threshold,
      selection: opts.selection,
      ablation: opts.ablation,
      curvePoints: opts.curvePoints,
      referenceHeads,
      progress,
      gqa: opts.gqa,
    });
    const scores: Record<string, Float32Array> = {};
    for (const m of opts.method) scores[m] = run.scores[m]!.scores;
    const task = taskName;
    const circuit = circuitToJson({
      provenance,
      graph: run.graph,
      mask: run.mask,
      scores,
      model: loaded.path,
      task,
      pruningThreshold: opts.threshold ?? null,
      extra: {
        model_sha256: loaded.sha256,
        prompts: data.clean.length,
        positions: data.pos,
        ablation: opts.ablation,
        gqa: run.graph.gqa,
        rules: opts.method.includes('eap-relp') ? opts.rules : undefined,
        ig_steps: opts.method.includes('eap-ig') ? opts.igSteps : undefined,
        selected_edges: run.selected,
        recovered: run.circuitRecovered,
        baselines: run.scores[opts.method[0]]!.baselines,
        reference_heads: referenceHeads ?? null,
        reference_source: referenceSource,
        head_auc: run.headAuc ?? null,
        reference_recovered: run.referenceRecovered ?? null,
      },
    });
    const paths = writeCircuitFiles(opts.out, circuit, run.curves);
    return {
      out: paths,
      provenance,
      prompts: data.clean.length,
      edges_total: run.graph.nEdges,
      circuit_edges: countEdges(run.mask),
      circuit_recovered: run.circuitRecovered,
      methods: Object.fromEntries(
        run.curves.map((c) => [c.method, { auc: c.auc, edges_for_80: c.edges_for_80, seconds: run.seconds[c.method], head_auc: run.headAuc?.[c.method as EdgeMethod] ?? null }]),
      ),
      reference_recovered: run.referenceRecovered ?? null,
    };
  } finally {
    model.dispose();
  }
}

/** Register `circuit` on the program. */
export function register(program: Command): void {
  const cmd = program
    .command('circuit')
    .description('Find a circuit by edge attribution (EAP, EAP-RelP, EAP-IG or exact edge patching) and measure its faithfulness')
    .option('--model <dir>', 'model folder (default: the embedded IOI model)');
  addDatasetOptions(cmd)
    .requiredOption('--method <list>', `edge scoring method(s), comma-separated: ${EDGE_METHODS.join(', ')}; the first selects the circuit`, methodList)
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
    .option('--workers <n>', 'score edges on worker threads, each with its own model (exact: default the number of cores, capped by memory; eap, eap-relp, eap-ig: only when given)', positiveInt)
    .option('--queue <url>', 'score edges on `relp worker` processes: redis://HOST:PORT/NAME')
    .option('--shard-edges <n>', 'exact: edges per shard', positiveInt, 64)
    .option('--shard-prompts <n>', 'eap, eap-relp, eap-ig with --workers/--queue: prompt pairs per shard', positiveInt, 8);
  addExecutionOptions(addTokenizerOptions(cmd))
    .action(async (opts: CircuitCommandOptions) => {
      const summary = await runCircuitCommand(opts);
      process.stdout.write(opts.json ? JSON.stringify(summary, null, 2) + '\n' : formatCircuitSummary(summary));
    });
}

/** The summary {@link runCircuitCommand} returns (`--json` prints it). */
export interface CircuitSummary {
  out: { circuit: string; faithfulness: string };
  provenance: Provenance;
  prompts: number;
  edges_total: number;
  circuit_edges: number;
  circuit_recovered: number;
  methods: Record<string, { auc: number; edges_for_80: number | null; seconds: { scoring: number; curve: number }; head_auc: number | null }>;
  reference_recovered: number | null;
}

/** The human summary of a circuit run. */
export function formatCircuitSummary(s: CircuitSummary): string {
  const lines = [
    `circuit: ${s.circuit_edges} of ${s.edges_total} edges on ${s.prompts} prompts (task ${s.provenance.task}${s.provenance.seed === null ? '' : `, seed ${s.provenance.seed}`}); recovers ${num(s.circuit_recovered)} of the metric`,
    '',
    `${'method'.padEnd(10)} ${'AUC'.padStart(7)} ${'edges→80%'.padStart(10)} ${'head AUC'.padStart(9)} ${'seconds'.padStart(8)}`,
    ...Object.entries(s.methods).map(([m, r]) => `${m.padEnd(10)} ${num(r.auc).padStart(7)} ${String(r.edges_for_80 ?? '–').padStart(10)} ${num(r.head_auc).padStart(9)} ${num(r.seconds.scoring + r.seconds.curve, 1).padStart(8)}`),
  ];
  if (s.reference_recovered !== null) lines.push('', `reference heads' circuit recovers ${num(s.reference_recovered)}`);
  lines.push('', `wrote ${s.out.circuit} and ${s.out.faithfulness}`);
  return lines.join('\n') + '\n';
}
