/**
 * The one correlation of relp: each method against activation patching, per component, as
 * Pearson r and Spearman ρ over all cells (the RelP paper's Table 1 layout). `relp patch`,
 * `relp compare`, `relp demo`, the viewer and the notebooks all call this, so a table prints the
 * same everywhere, and a correlation that would mislead is never a number anywhere.
 *
 * Rules:
 * - a cell that is not a finite number (null in the file, NaN) in either method is left out of
 *   that pair;
 * - no correlation (null, with the reason) when fewer than 3 pairs are left, when either side is
 *   all zero or constant up to {@link DEGENERATE_TOLERANCE} × the metric scale (a correlation of
 *   rounding noise is a number that means nothing), or when the metric's gradient vanishes at the
 *   base run (KL noising), where every gradient estimate is 0 by construction;
 * - magnitude methods (AtP*) are correlated with |activation|, not with its signed scores.
 */
import { NODE_GRAD_METHODS } from '../methods.ts';
import { sampleCorrelation, sampleRankCorrelation } from 'simple-statistics';
import { flattenTensor, type ScoreTensor } from '../contracts/score-tensor.ts';
import { COMPONENT_ORDER, KL_METRIC_NAME, METHOD_ORDER, NORMALISED_METRIC_NAME, REFERENCE_METHOD, orderBy } from './names.ts';
import { describeRules } from '../rules/rules.ts';

/**
 * Scores whose spread max |score − mean| is at most this fraction of the metric scale count as
 * constant (all zero when max |score| is that small too). float32 rounding leaves about 1e-7 of
 * the scale (measured: ≤ 3e-7 for AtP, AtP* and RelP under KL noising on the embedded model), so
 * 1e-5 stays clear of it, and scores that small carry no ranking worth a correlation.
 */
export const DEGENERATE_TOLERANCE = 1e-5;

/** Why a correlation is undefined. */
export type UndefinedKind = 'few-cells' | 'all-zero' | 'constant' | 'vanishing-gradient' | 'not-finite';

/** A correlation that is a number. */
export interface DefinedCorrelation {
  pearson: number;
  spearman: number;
  /** Number of cells finite in both methods. */
  n: number;
}

/** No correlation, and why. */
export interface UndefinedCorrelation {
  pearson: null;
  spearman: null;
  n: number;
  kind: UndefinedKind;
  /** One sentence, e.g. "all scores are 0 (…)". */
  reason: string;
}

/** Pearson and Spearman r of one method against the reference on one component, or why not. */
export type CorrelationCell = DefinedCorrelation | UndefinedCorrelation;

/** Cells with the same reason for having no correlation, for the notes under a table. */
export interface NoCorrelationNote {
  kind: UndefinedKind;
  /** Short tag printed in the cell, e.g. `all 0`. */
  tag: string;
  reason: string;
  /** Which cells, e.g. `atp, relp (every component)` or `atp (k, v)`. */
  where: string;
}

/** Rows = components, columns = methods (each against `reference`, or |reference|). */
export interface CorrelationTable {
  reference: string;
  /** Methods with at least one cell, in display order. */
  methods: string[];
  rows: { component: string; cells: Record<string, CorrelationCell> }[];
  /** Every method and component of the scores, in display order (for pages that draw them all). */
  order: { methods: string[]; components: string[] };
  /** method → what its column is correlated with: `activation`, or `|activation|` for magnitude methods. */
  against: Record<string, string>;
  /** method → what to keep in mind when reading its scores (e.g. atp* is a magnitude). */
  notes: Record<string, string>;
  /** The metric scale S: spreads ≤ {@link DEGENERATE_TOLERANCE} × S count as constant. */
  scale: number;
  /** The cells without a correlation, grouped by reason. */
  noCorrelation: NoCorrelationNote[];
}

/** Scores as run.json holds them: method → component → tensor. */
export type ScoresByMethod = Record<string, Partial<Record<string, ScoreTensor>>>;

/** The metric of a run as run.json records it. */
export interface RunMetricRecord {
  name: string;
  clean: number | null;
  corrupt: number | null;
  direction: string;
}

/** Methods whose scores are magnitudes (|·|), not signed effects, with the note tables print. */
export const MAGNITUDE_METHODS: Record<string, string> = {
  'atp*': 'atp* scores are magnitudes (GradDrop averages |estimate|), so its column is correlated with |activation|',
};

/** Short tags printed in a cell without a correlation. */
const TAGS: Record<UndefinedKind, string> = { 'few-cells': 'n < 3', 'all-zero': 'all 0', constant: 'constant', 'vanishing-gradient': 'no gradient', 'not-finite': 'not finite' };

/** What an all-zero gradient estimate most likely means. */
const ZERO_GRADIENT_HINT = "a gradient estimate is all 0 when the metric's gradient vanishes at the base run, e.g. KL at the clean run";

/** Options of {@link correlate}. */
export interface CorrelateOptions {
  /** Metric scale S (default: the largest |value| on either side). */
  scale?: number;
  /** How S was found, for the reason (default: `S = max |score| of both sides = <scale>`). */
  scaleText?: string;
  /** Name of the first side in reasons (default `reference`); reasons about the second say "scores". */
  referenceName?: string;
  /** Said after "all scores are 0" about the second side, e.g. why a gradient estimate is 0. */
  zeroHint?: string;
}

const undefinedCell = (n: number, kind: UndefinedKind, reason: string): UndefinedCorrelation => ({ pearson: null, spearman: null, n, kind, reason });
/** Largest finite |value| (0 when none). */
function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let k = 0; k < v.length; k++) if (Number.isFinite(v[k]!)) m = Math.max(m, Math.abs(v[k]!));
  return m;
}

/** The pairs finite on both sides. */
function finitePairs(a: ArrayLike<number>, b: ArrayLike<number>): [number[], number[]] {
  if (a.length !== b.length) throw new Error(`correlate: lengths differ (${a.length} vs ${b.length})`);
  const x: number[] = [];
  const y: number[] = [];
  for (let k = 0; k < a.length; k++) {
    if (Number.isFinite(a[k]!) && Number.isFinite(b[k]!)) {
      x.push(a[k]!);
      y.push(b[k]!);
    }
  }
  return [x, y];
}

/** Why `v` has nothing to correlate (all zero or constant within `tol`), or null. */
function degenerate(v: number[], tol: number, who: string, scaleText: string, zeroHint?: string): { kind: UndefinedKind; reason: string } | null {
  const mean = v.reduce((s, t) => s + t, 0) / v.length;
  if (maxAbs(v.map((t) => t - mean)) > tol) return null;
  const bound = `≤ ${DEGENERATE_TOLERANCE.toExponential(0)} × S, ${scaleText}`;
  if (maxAbs(v) <= tol) return { kind: 'all-zero', reason: `all ${who} are 0 (max |score| ${bound})${zeroHint ? `: ${zeroHint}` : ''}` };
  return { kind: 'constant', reason: `${who} are constant (max |score − mean| ${bound})` };
}

/**
 * Pearson and Spearman correlation of paired samples under the rules above: a number, or null
 * with the reason.
 * @param a [n] the reference @param b [n] the method
 */
export function correlate(a: ArrayLike<number>, b: ArrayLike<number>, options: CorrelateOptions = {}): CorrelationCell {
  const [x, y] = finitePairs(a, b);
  const n = x.length;
  const ref = options.referenceName ?? 'reference';
  if (n < 3) return undefinedCell(n, 'few-cells', `fewer than 3 cells are finite on both sides (n = ${n})`);
  const scale = options.scale ?? Math.max(maxAbs(x), maxAbs(y));
  const scaleText = options.scaleText ?? `S = max |score| of both sides = ${scale.toPrecision(3)}`;
  const tol = DEGENERATE_TOLERANCE * scale;
  const bad = degenerate(x, tol, `${ref} scores`, scaleText) ?? degenerate(y, tol, 'scores', scaleText, options.zeroHint);
  if (bad) return undefinedCell(n, bad.kind, bad.reason);
  const pearson = sampleCorrelation(x, y);
  const spearman = sampleRankCorrelation(x, y);
  if (!Number.isFinite(pearson) || !Number.isFinite(spearman)) return undefinedCell(n, 'not-finite', 'the correlation is not a finite number');
  // Rounding can put |r| a hair above 1.
  const clamp = (r: number) => Math.max(-1, Math.min(1, r));
  return { pearson: clamp(pearson), spearman: clamp(spearman), n };
}

/** AtP, AtP* and RelP (any rules; older runs name it `relp-<preset>`) estimate with ∂m/∂a taken at the base run. */
export function isGradientMethod(method: string): boolean {
  return (NODE_GRAD_METHODS as readonly string[]).includes(method) || method.startsWith('relp-');
}

/**
 * Why the metric's gradient is exactly 0 at the base run, or null. KL(clean ‖ run) is at its
 * minimum, 0, on the clean run, which is the base run when noising; every gradient estimate is
 * then 0 up to rounding, whatever the component.
 */
export function vanishingGradient(metric: RunMetricRecord | undefined): string | null {
  if (metric?.name !== KL_METRIC_NAME || metric.direction !== 'noising') return null;
  return "the metric's gradient vanishes at the base run: KL to the clean distribution is at its minimum (0) on the clean run, which noising patches into, so every gradient estimate is 0 up to rounding";
}

/** The metric scale S of a run: max(|clean − corrupt| in score units, max |reference score|). */
function metricScale(metric: RunMetricRecord | undefined, refMax: number, reference: string): { scale: number; text: string } {
  // A normalised metric is in units of clean − corrupt, so its gap is 1.
  const gap = metric?.name === NORMALISED_METRIC_NAME ? 1 : metric?.clean != null && metric.corrupt != null ? Math.abs(metric.clean - metric.corrupt) : 0;
  const scale = Math.max(gap, refMax);
  const formula = metric ? `max(|clean − corrupt|, max |${reference}|)` : `max |${reference}|`;
  return { scale, text: `S = ${formula} = ${scale.toPrecision(3)}` };
}

/** Options of {@link correlationTable}. */
export interface CorrelationTableOptions {
  /** The run's metric (run.json's `metric`): gives the scale and tells when its gradient vanishes. */
  metric?: RunMetricRecord;
  /** The ground-truth method (default `activation`). */
  reference?: string;
}

/**
 * Correlate every method with `reference` (magnitude methods with |reference|) on each component
 * both have with the same axes and shape. Without reference scores the table has no rows.
 */
export function correlationTable(scores: ScoresByMethod, options: CorrelationTableOptions = {}): CorrelationTable {
  const reference = options.reference ?? REFERENCE_METHOD;
  const allMethods = orderBy(Object.keys(scores), METHOD_ORDER);
  const components = orderBy(Object.values(scores).flatMap((c) => Object.keys(c)), COMPONENT_ORDER);
  const methods = allMethods.filter((m) => m !== reference);
  const order = { methods: allMethods, components };
  const notes = Object.fromEntries(allMethods.filter((m) => MAGNITUDE_METHODS[m]).map((m) => [m, MAGNITUDE_METHODS[m]!]));
  const against = Object.fromEntries(methods.map((m) => [m, MAGNITUDE_METHODS[m] ? `|${reference}|` : reference]));
  const ref = scores[reference] ?? {};
  const refFlats = new Map(components.filter((c) => ref[c]).map((c) => [c, flattenTensor(ref[c]!)]));
  const { scale, text: scaleText } = metricScale(options.metric, Math.max(0, ...[...refFlats.values()].map(maxAbs)), reference);
  const vanishing = vanishingGradient(options.metric);
  const rows: CorrelationTable['rows'] = [];
  for (const [component, refFlat] of refFlats) {
    const refT = ref[component]!;
    const cells: Record<string, CorrelationCell> = {};
    for (const m of methods) {
      const t = scores[m]?.[component];
      if (!t) continue;
      if (t.shape.join() !== refT.shape.join() || t.axes.join() !== refT.axes.join()) {
        throw new Error(`${m}/${component}: shape [${t.shape.join(', ')}] (${t.axes.join(', ')}) differs from ${reference}'s [${refT.shape.join(', ')}] (${refT.axes.join(', ')})`);
      }
      const flat = flattenTensor(t);
      const versus = MAGNITUDE_METHODS[m] ? refFlat.map(Math.abs) : refFlat;
      const gradient = isGradientMethod(m);
      cells[m] = vanishing && gradient
        ? undefinedCell(finitePairs(versus, flat)[0].length, 'vanishing-gradient', vanishing)
        : correlate(versus, flat, { scale, scaleText, referenceName: against[m], zeroHint: gradient ? ZERO_GRADIENT_HINT : undefined });
    }
    if (Object.keys(cells).length > 0) rows.push({ component, cells });
  }
  const shown = methods.filter((m) => rows.some((r) => r.cells[m]));
  return { reference, methods: shown, rows, order, against: pick(against, shown), notes, scale, noCorrelation: groupUndefined(rows, shown) };
}

const pick = (o: Record<string, string>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, o[k]!]));

/** Group the cells without a correlation by reason, naming methods and components. */
function groupUndefined(rows: CorrelationTable['rows'], methods: string[]): NoCorrelationNote[] {
  const groups = new Map<string, { kind: UndefinedKind; byMethod: Map<string, string[]> }>();
  for (const { component, cells } of rows) {
    for (const m of methods) {
      const c = cells[m];
      if (!c || c.pearson !== null) continue;
      const g = groups.get(c.reason) ?? { kind: c.kind, byMethod: new Map<string, string[]>() };
      groups.set(c.reason, g);
      g.byMethod.set(m, [...(g.byMethod.get(m) ?? []), component]);
    }
  }
  return [...groups].map(([reason, { kind, byMethod }]) => {
    // Methods missing the same components share one entry: `atp, relp (every component)`.
    const byComponents = new Map<string, string[]>();
    for (const [m, comps] of byMethod) {
      const all = comps.length > 1 && comps.length === rows.filter((r) => r.cells[m]).length;
      const key = all ? 'every component' : comps.join(', ');
      byComponents.set(key, [...(byComponents.get(key) ?? []), m]);
    }
    const where = [...byComponents].map(([comps, ms]) => `${ms.join(', ')} (${comps})`).join(', ');
    return { kind, tag: TAGS[kind], reason, where };
  });
}

/** Column header of a method: `atp r (ρ)`, or `atp* vs |activation| r (ρ)` for a magnitude method. */
const columnHeader = (table: CorrelationTable, m: string) => `${m}${table.against[m] === table.reference ? '' : ` vs ${table.against[m]}`} r (ρ)`;

/** Format a table as text: rows = components, columns = methods, `r (ρ)`; `– (why)` = no correlation. */
export function formatCorrelationTable(table: CorrelationTable, title: string): string {
  const f = (v: number) => v.toFixed(3).padStart(6);
  const widths = table.methods.map((m) => Math.max(17, columnHeader(table, m).length));
  const head = ['component'.padEnd(12), ...table.methods.map((m, k) => columnHeader(table, m).padStart(widths[k]!))].join(' ');
  const cell = (c: CorrelationCell | undefined) => (!c ? '-' : c.pearson === null ? `– (${TAGS[c.kind]})` : `${f(c.pearson)} (${f(c.spearman)})`);
  const lines = table.rows.map((r) => [r.component.padEnd(12), ...table.methods.map((m, k) => cell(r.cells[m]).padStart(widths[k]!))].join(' '));
  const notes = table.noCorrelation.map((g) => `– (${g.tag}) ${g.where}: no correlation: ${g.reason}`);
  for (const m of table.methods) if (MAGNITUDE_METHODS[m]) notes.push(MAGNITUDE_METHODS[m]);
  return [title, head, ...lines, ...notes.map((n) => `note: ${n}`)].join('\n');
}

/** The title of a run's correlation table: `relp demo`, `relp patch` and `relp compare` print the same one. */
export function correlationTitle(rules: string | null | undefined): string {
  return `Correlation with activation patching, Pearson r (Spearman ρ); relp rules: ${rules ? describeRules(rules) : '-'}`;
}

/** One line saying which correlations are missing and why (null when all are numbers). */
export function correlationWarning(table: CorrelationTable): string | null {
  if (table.noCorrelation.length === 0) return null;
  return `no correlation for ${table.noCorrelation.map((g) => `${g.where}: ${g.reason}`).join('; ')}`;
}
