/**
 * Edge-scoring speed (`npm run bench`, unless `--no-edges`): EAP, EAP-RelP and EAP-IG (5 steps)
 * on a GPT-2-small-shaped model over its whole MIB-sized graph (32,491 edges), with the seconds
 * each takes and the edges scored per second. One gradient pass scores every edge, so EAP and
 * EAP-RelP cost about one forward + backward, EAP-IG about five.
 */
import { buildGraph } from '../src/circuits/graph.ts';
import { attributeEdges } from '../src/circuits/attribute.ts';
import type { HookedTransformer } from '../src/hooks/hooked-transformer.ts';
import { toPatchingData } from '../src/patching/data.ts';
import { benchTokens } from './scaling.ts';

/** One method's timing. */
export interface EdgeBenchRow {
  method: string;
  seconds: number;
  edges: number;
  edges_per_s: number;
}

/** Time edge scoring on `model` with `batch` prompt pairs of `pos` tokens. */
export function runEdgeBench(model: HookedTransformer, batch: number, pos: number, log: (s: string) => void): EdgeBenchRow[] {
  const graph = buildGraph(model.cfg.nLayers, model.cfg.nHeads, model.topology());
  const clean = benchTokens(batch, pos, model.cfg.dVocab, 3);
  const corrupt = benchTokens(batch, pos, model.cfg.dVocab, 4);
  const data = toPatchingData(clean.map((c, i) => ({ clean: '', corrupt: '', answer: '', wrong: '', cleanIds: c, corruptIds: corrupt[i], answerId: 11, wrongId: 42 })));
  const rows: EdgeBenchRow[] = [];
  for (const method of ['eap', 'eap-relp', 'eap-ig'] as const) {
    const t0 = performance.now();
    attributeEdges(model, graph, data, { method, igSteps: 5, metric: 'logit-diff' });
    const seconds = (performance.now() - t0) / 1000;
    rows.push({ method, seconds, edges: graph.nEdges, edges_per_s: graph.nEdges / seconds });
    log(`edges: ${method} scored ${graph.nEdges} edges in ${seconds.toFixed(2)} s (${(graph.nEdges / seconds).toFixed(0)} edges/s)`);
  }
  return rows;
}

/** The edge table of the report. */
export function formatEdgeReport(rows: EdgeBenchRow[], batch: number, pos: number): string {
  const lines = [`Edge scoring (GPT-2-small shape, ${batch} pairs × ${pos} tokens, ${rows[0]?.edges ?? 0} edges; EAP-IG with 5 steps)`, 'method      seconds   edges/s'];
  for (const r of rows) lines.push(`${r.method.padEnd(10)} ${r.seconds.toFixed(2).padStart(8)} ${r.edges_per_s.toFixed(0).padStart(9)}`);
  return lines.join('\n');
}
