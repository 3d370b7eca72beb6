/**
 * Entry of the circuit page: loads circuit.json (and faithfulness.json, token labels when present),
 * builds the controls, and redraws the canvas on every state change (one frame per animation
 * frame at most). The state (method, threshold, pins) lives in the URL query.
 */
import { ApiError, getJson, pageRunId, runApi } from '../shared/api.js';
import { byId, h, showError } from '../shared/dom.js';
import { fmt } from '../shared/format.js';
import { drawScene } from './draw.js';
import { download, sceneToSvg } from './export.js';
import { renderFaithfulness } from './faithfulness.js';
import { buildGraph, countAtLeast, exportSubgraph, keptEdges, methodScores, pathsThrough, thresholdForTopK } from './graph.js';
import { layoutGraph, nearestEdge, nearestNode } from './layout.js';
import { renderLegend } from './legend.js';
import { parseState, serializeState, sliderToThreshold, thresholdToSlider } from './state.js';
import { tooltipContent } from './tooltip.js';

/** Slider resolution. */
const STEPS = 1000;
/** Edges shown when neither the URL nor the file says which threshold to use. */
const DEFAULT_TOP_EDGES = 300;

const root = byId('circuit');
const runId = pageRunId();

/**
 * The initial threshold: qParams.pruningThreshold when it keeps at least one edge, else the
 * threshold of the top {@link DEFAULT_TOP_EDGES} edges.
 */
function defaultThreshold(ms, qParams) {
  const q = qParams?.pruningThreshold;
  if (typeof q === 'number' && q > 0 && countAtLeast(ms.absSorted, q) > 0) return q;
  return thresholdForTopK(ms, DEFAULT_TOP_EDGES);
}

/**
 * circuit.json, the faithfulness curves (null without faithfulness.json) and the token labels
 * (from the circuit's metadata, else from run.json when nodes are per position).
 * @returns {Promise<{circuit: import('./graph.js').CircuitFile, faith: any[] | null, labels: string[]}>}
 */
async function loadCircuit() {
  const circuit = await getJson(runApi(runId, 'circuit'));
  const [faith, labels] = await Promise.all([
    getJson(runApi(runId, 'faithfulness')).catch(() => null),
    (async () => {
      const meta = circuit.metadata ?? {};
      const fromMeta = Array.isArray(meta.prompt_tokens) ? meta.prompt_tokens : Array.isArray(meta.labels) ? meta.labels : null;
      if (fromMeta) return fromMeta.map(String);
      if (!circuit.nodes.some((n) => n.ctx_idx !== null && n.ctx_idx !== undefined)) return [];
      const run = await getJson(runApi(runId)).catch(() => null);
      return Array.isArray(run?.labels) ? run.labels : [];
    })(),
  ]);
  return { circuit, faith, labels };
}

/**
 * The view state restored from the URL, else from the file's qParams, with a notice for each part
 * of the URL that does not fit this circuit.
 * @param {import('./graph.js').Graph} graph
 * @param {import('./graph.js').CircuitFile} circuit
 */
function initialState(graph, circuit) {
  const url = parseState(location.search);
  const notices = [];
  /** @type {{method: string, threshold: number, pins: string[]}} */
  const state = { method: graph.defaultMethod, threshold: 0, pins: [] };
  if (url.method && graph.methods.includes(url.method)) state.method = url.method;
  else if (url.method) notices.push(`The URL asks for method "${url.method}", which this circuit does not have; showing ${state.method}.`);
  state.threshold = url.threshold ?? defaultThreshold(methodScores(graph, state.method), circuit.qParams);
  const wantedPins = url.pins.length ? url.pins : circuit.qParams?.pinnedIds ?? [];
  state.pins = wantedPins.filter((p) => graph.index.has(p));
  const unknown = wantedPins.filter((p) => !graph.index.has(p));
  if (unknown.length) notices.push(`Unknown node id${unknown.length > 1 ? 's' : ''} ignored: ${unknown.join(', ')}`);
  return { state, notices, fromUrl: url.method !== null || url.threshold !== null || url.pins.length > 0 };
}

/**
 * Build the page's elements into `root`: the summary line, notices, controls, the canvas with its
 * tooltip, and the side panel (pins, legend, faithfulness).
 * @param {import('./graph.js').Graph} graph
 * @param {import('./graph.js').CircuitFile} circuit
 * @param {string[]} notices
 */
function buildPage(graph, circuit, notices) {
  const ui = {
    methodSelect: h('select', { id: 'method-select' }, ...graph.methods.map((m) => h('option', { value: m }, m))),
    slider: h('input', { type: 'range', id: 'threshold-slider', min: 0, max: STEPS, step: 1, 'aria-describedby': 'edge-count' }),
    thrInput: h('input', { type: 'number', id: 'threshold-input', min: 0, step: 'any', 'aria-label': '|score| threshold' }),
    edgeCount: h('span', { id: 'edge-count', role: 'status', 'aria-live': 'polite' }),
    search: h('input', { type: 'search', id: 'node-search', list: 'node-id-list', placeholder: 'a9.h6, m0, logits', autocomplete: 'off', 'aria-describedby': 'search-count' }),
    searchCount: h('span', { id: 'search-count', class: 'muted' }),
    clearPins: h('button', { type: 'button', id: 'clear-pins' }, 'Clear pins'),
    btnPng: h('button', { type: 'button', id: 'export-png' }, 'PNG'),
    btnSvg: h('button', { type: 'button', id: 'export-svg' }, 'SVG'),
    btnJson: h('button', { type: 'button', id: 'export-json', title: 'the pinned subgraph (or all kept edges when nothing is pinned)' }, 'JSON'),
    canvas: h('canvas', { id: 'circuit-canvas', tabindex: 0, role: 'img', 'aria-label': 'circuit graph; arrow keys move between nodes, Enter pins, Escape clears pins' }),
    tooltip: h('div', { class: 'tooltip', id: 'tooltip', role: 'tooltip', hidden: true }),
    pinList: h('div', { class: 'pin-list', id: 'pin-list' }),
    legend: h('div', { id: 'legend' }),
    faithEl: h('div', { class: 'faith', id: 'faithfulness' }),
    wrap: h('div', { class: 'canvas-wrap' }),
  };
  ui.wrap.append(ui.canvas, ui.tooltip);
  const datalist = h('datalist', { id: 'node-id-list' }, ...graph.nodes.map((n) => h('option', { value: n.node_id })));
  const controls = h(
    'div',
    { class: 'controls', role: 'group', 'aria-label': 'circuit controls' },
    h('label', {}, 'Method', ui.methodSelect),
    h('label', {}, '|score| ≥', ui.slider),
    ui.thrInput,
    ui.edgeCount,
    h('label', {}, 'Find node', ui.search),
    ui.searchCount,
    datalist,
    ui.clearPins,
    h('span', { class: 'export-group', role: 'group', 'aria-label': 'export' }, h('span', { class: 'muted' }, 'Export:'), ui.btnPng, ui.btnSvg, ui.btnJson),
  );
  const meta = circuit.metadata ?? {};
  const E = circuit.links.length;
  root.replaceChildren(
    h('p', { class: 'muted', id: 'circuit-meta' }, [meta.model && `model ${meta.model}`, meta.task && `task ${meta.task}`, `${graph.nodes.length} nodes`, `${E.toLocaleString('en-US')} edges`, `methods: ${graph.methods.join(', ')}`].filter(Boolean).join(' · ')),
    h('div', { id: 'notices' }, ...notices.map((n) => h('p', { class: 'notice', role: 'status' }, n))),
    controls,
    h('div', { class: 'circuit-body' }, ui.wrap, h('aside', { class: 'side' }, h('h3', {}, 'Pinned nodes'), ui.pinList, ui.legend, ui.faithEl)),
  );
  return ui;
}

/**
 * The page's live view: the URL state, what it derives (the selected method's scores, the kept
 * edges, the paths through the pins), what the pointer and the keyboard point at, and the redraw.
 */
class CircuitView {
  /**
   * @param {import('./graph.js').Graph} graph
   * @param {{method: string, threshold: number, pins: string[]}} state
   * @param {ReturnType<typeof buildPage>} ui
   * @param {{faith: any[] | null, labels: string[], edges: number}} data
   */
  constructor(graph, state, ui, data) {
    this.graph = graph;
    this.state = state;
    this.ui = ui;
    this.faith = data.faith;
    this.labels = data.labels;
    this.E = data.edges;
    this.ms = methodScores(graph, state.method);
    this.kept = keptEdges(this.ms, state.threshold);
    this.paths = null;
    /** @type {Set<number> | null} */
    this.matches = null;
    this.hoverNode = -1;
    this.hoverEdge = -1;
    this.cursorNode = -1;
    this.layout = null;
    this.cssW = 0;
    this.cssH = 0;
    /** @type {import('./draw.js').Scene | null} the last frame drawn (what the SVG export writes) */
    this.lastScene = null;
    this.frame = 0;
    this.urlDirty = false;
    this.recompute();
  }

  /** Scores, kept edges and pinned paths for the current state. */
  recompute() {
    const { graph, state } = this;
    this.ms = methodScores(graph, state.method);
    this.kept = keptEdges(this.ms, state.threshold);
    const pinIdx = state.pins.map((p) => graph.index.get(p)).filter((k) => k !== undefined);
    this.paths = pinIdx.length ? pathsThrough(graph, this.kept, pinIdx) : null;
    if (this.hoverEdge >= 0 && !(Math.abs(this.ms.score[this.hoverEdge]) >= state.threshold)) this.hoverEdge = -1;
  }

  /** Controls, pin list, legend and faithfulness panel from the current state. */
  syncControls() {
    const { ui, state, ms, kept, paths, E } = this;
    ui.slider.value = String(thresholdToSlider(state.threshold, ms.minAbsNonzero, ms.maxAbs, STEPS));
    ui.slider.disabled = !(ms.maxAbs > ms.minAbsNonzero);
    ui.slider.setAttribute('aria-valuetext', `|score| ≥ ${fmt(state.threshold)}, ${kept.length} edges`);
    if (document.activeElement !== ui.thrInput) ui.thrInput.value = String(Number(state.threshold.toPrecision(6)));
    ui.edgeCount.dataset.count = String(kept.length);
    ui.edgeCount.textContent = `${kept.length.toLocaleString('en-US')} of ${E.toLocaleString('en-US')} edges${paths ? ` · ${paths.edgeCount.toLocaleString('en-US')} on pinned paths` : ''}`;
    ui.pinList.replaceChildren(
      ...(state.pins.length
        ? state.pins.map((p) => h('button', { type: 'button', 'data-pin': p, 'aria-label': `unpin ${p}`, onclick: () => this.togglePin(this.graph.index.get(p)) }, `${p} ×`))
        : [h('span', { class: 'muted' }, 'none: click a node')]),
    );
    renderLegend(ui.legend, { maxAbs: ms.maxAbs, method: state.method });
    if (this.faith && this.faith.length) renderFaithfulness(ui.faithEl, { curves: this.faith, keptEdges: kept.length, method: state.method });
  }

  /** Size the canvas to its container (and the window's height), and lay the graph out again when it changed. */
  resize() {
    const { ui, graph } = this;
    const w = Math.max(600, Math.floor(ui.wrap.clientWidth));
    const rows = 2 * Math.max(...graph.nodes.map((n) => (n.feature_type === 'logits' ? 0 : n.layer + 1)), 0) + 2;
    // Fit the whole graph in the window when possible (about 22–30 px per row).
    const fit = Math.max(520, window.innerHeight - (ui.wrap.getBoundingClientRect().top + window.scrollY) - 16);
    const hgt = Math.max(420, Math.min(1000, rows * 30 + 90, fit));
    if (w === this.cssW && hgt === this.cssH && this.layout) return;
    this.cssW = w;
    this.cssH = hgt;
    const dpr = window.devicePixelRatio || 1;
    ui.canvas.width = Math.round(w * dpr);
    ui.canvas.height = Math.round(hgt * dpr);
    ui.canvas.style.width = `${w}px`;
    ui.canvas.style.height = `${hgt}px`;
    this.layout = layoutGraph(graph.nodes, { width: w, height: hgt, labels: this.labels });
  }

  /** Draw on the next animation frame (once however often it is asked); `updateUrl` also writes the state to the URL. */
  scheduleDraw(updateUrl = false) {
    this.urlDirty = this.urlDirty || updateUrl;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /** Draw one frame now. */
  draw() {
    const { canvas } = this.ui;
    const ctx = canvas.getContext('2d');
    const { graph, layout, ms, kept, paths, matches, hoverNode, hoverEdge, cursorNode } = this;
    if (!ctx || !layout) return; // layout: set by resize(), which runs before the first frame
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.lastScene = { graph, layout, ms, kept, paths, matches, hoverNode, hoverEdge, cursorNode, width: this.cssW, height: this.cssH };
    const t0 = performance.now();
    const { drawnEdges } = drawScene(ctx, this.lastScene);
    canvas.dataset.drawnEdges = String(drawnEdges);
    canvas.dataset.drawMs = (performance.now() - t0).toFixed(1);
    if (this.urlDirty) {
      this.urlDirty = false;
      history.replaceState(null, '', `${location.pathname}${serializeState(this.state)}`);
    }
    if (!document.body.dataset.ready) {
      // Milliseconds from navigation start to the first drawn frame (read by bench/viewer-load.ts).
      document.body.dataset.readyMs = performance.now().toFixed(0);
      document.body.dataset.ready = '1';
    }
  }

  /** After a state change: recompute, sync the controls, redraw (and write the URL). */
  update(updateUrl = true) {
    this.recompute();
    this.syncControls();
    this.scheduleDraw(updateUrl);
  }

  /** Pin node `k`, or unpin it when pinned. */
  togglePin(k) {
    if (k === undefined || k < 0) return;
    const id = this.graph.nodes[k].node_id;
    this.state.pins = this.state.pins.includes(id) ? this.state.pins.filter((p) => p !== id) : [...this.state.pins, id];
    this.update();
  }

  /** Show the tooltip of a node or edge at canvas point (x, y); index −1 hides it. */
  showTooltip(kind, index, x, y) {
    const { tooltip } = this.ui;
    if (index < 0) {
      tooltip.hidden = true;
      return;
    }
    tooltip.replaceChildren(...tooltipContent({ graph: this.graph, kind, index, labels: this.labels, method: this.state.method }));
    tooltip.hidden = false;
    const left = Math.min(x + 14, this.cssW - 240);
    tooltip.style.left = `${Math.max(4, left)}px`;
    tooltip.style.top = `${Math.max(4, y + 14)}px`;
  }
}

/**
 * Method, threshold (slider and number), clear-pins and search controls.
 * @param {CircuitView} view
 */
function bindControls(view) {
  const { ui, state, graph } = view;
  ui.methodSelect.addEventListener('change', () => {
    const keepCount = view.kept.length;
    state.method = ui.methodSelect.value;
    // Keep the same number of edges: methods have different score scales.
    state.threshold = thresholdForTopK(methodScores(graph, state.method), Math.max(keepCount, 1));
    view.update();
  });
  ui.slider.addEventListener('input', () => {
    state.threshold = sliderToThreshold(Number(ui.slider.value), view.ms.minAbsNonzero, view.ms.maxAbs, STEPS);
    view.update();
  });
  ui.thrInput.addEventListener('change', () => {
    const v = Number(ui.thrInput.value);
    if (Number.isFinite(v) && v >= 0) {
      state.threshold = v;
      view.update();
    } else ui.thrInput.value = String(state.threshold);
  });
  ui.clearPins.addEventListener('click', () => {
    state.pins = [];
    view.update();
  });
  const findMatches = (q) => {
    const s = q.trim().toLowerCase();
    if (!s) return null;
    const out = new Set();
    graph.nodes.forEach((n, k) => n.node_id.toLowerCase().includes(s) && out.add(k));
    return out;
  };
  ui.search.addEventListener('input', () => {
    const matches = findMatches(ui.search.value);
    view.matches = matches;
    ui.searchCount.textContent = matches ? `${matches.size} match${matches.size === 1 ? '' : 'es'}` : '';
    view.scheduleDraw();
  });
  ui.search.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    const exact = graph.index.get(ui.search.value.trim());
    const k = exact ?? (view.matches && view.matches.size ? [...view.matches][0] : undefined);
    if (k === undefined) return;
    view.cursorNode = k;
    if (!state.pins.includes(graph.nodes[k].node_id)) view.togglePin(k);
    else view.scheduleDraw();
  });
}

/**
 * Pointer on the canvas: hover (hit-tested at most once per animation frame) shows a tooltip, a
 * click pins the node under it.
 * @param {CircuitView} view
 */
function bindPointer(view) {
  const { canvas, tooltip } = view.ui;
  const localXY = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  };
  let pending = null;
  let hoverQueued = false;
  canvas.addEventListener('pointermove', (ev) => {
    pending = localXY(ev);
    if (hoverQueued) return;
    hoverQueued = true;
    requestAnimationFrame(() => {
      hoverQueued = false;
      const { layout } = view;
      if (!pending || !layout) return;
      const [x, y] = pending;
      pending = null;
      const n = nearestNode(layout, x, y, layout.radius + 4);
      const e = n < 0 ? nearestEdge(layout, view.graph, view.kept, x, y, 4) : -1;
      if (n !== view.hoverNode || e !== view.hoverEdge) {
        view.hoverNode = n;
        view.hoverEdge = e;
        view.scheduleDraw();
      }
      if (n >= 0) view.showTooltip('node', n, x, y);
      else if (e >= 0) view.showTooltip('edge', e, x, y);
      else view.showTooltip('node', -1, 0, 0);
    });
  });
  canvas.addEventListener('pointerleave', () => {
    pending = null;
    view.hoverNode = view.hoverEdge = -1;
    tooltip.hidden = true;
    view.scheduleDraw();
  });
  canvas.addEventListener('click', (ev) => {
    if (!view.layout) return;
    const [x, y] = localXY(ev);
    const n = nearestNode(view.layout, x, y, view.layout.radius + 4);
    if (n >= 0) {
      view.cursorNode = n;
      view.togglePin(n);
    }
  });
}

/**
 * The node the keyboard cursor moves to from `cur` with ArrowUp/ArrowDown: the nearest node in the
 * next row up or down (rows first, then horizontal distance); −1 when there is none.
 */
function nodeAbove(layout, order, cur, up) {
  let best = -1;
  let bestScore = Infinity;
  for (const k of order) {
    const dy = layout.y[cur] - layout.y[k];
    if (up ? dy <= 0.5 : dy >= -0.5) continue;
    const score = Math.abs(dy) * 1000 + Math.abs(layout.x[k] - layout.x[cur]);
    if (score < bestScore) (bestScore = score), (best = k);
  }
  return best;
}

/**
 * Keyboard: arrows move a cursor through the nodes, Enter/Space pins, Escape clears pins (also
 * from outside the canvas, unless typing in a field).
 * @param {CircuitView} view
 */
function bindKeyboard(view) {
  const { canvas, tooltip } = view.ui;
  const { graph, state } = view;
  const byPosition = (layout) => graph.nodes.map((_, k) => k).sort((a, b) => layout.y[b] - layout.y[a] || layout.x[a] - layout.x[b]);
  canvas.addEventListener('keydown', (ev) => {
    const { layout } = view;
    if (!layout) return;
    const order = byPosition(layout);
    const at = view.cursorNode >= 0 ? order.indexOf(view.cursorNode) : -1;
    let next = view.cursorNode;
    if (ev.key === 'ArrowRight') next = order[Math.min(order.length - 1, at + 1)];
    else if (ev.key === 'ArrowLeft') next = order[Math.max(0, at - 1)];
    else if (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') {
      const best = nodeAbove(layout, order, view.cursorNode >= 0 ? view.cursorNode : order[0], ev.key === 'ArrowUp');
      if (best >= 0) next = best;
    } else if ((ev.key === 'Enter' || ev.key === ' ') && view.cursorNode >= 0) {
      ev.preventDefault();
      view.togglePin(view.cursorNode);
      return;
    } else if (ev.key === 'Escape') {
      state.pins = [];
      view.update();
      return;
    } else return;
    ev.preventDefault();
    view.cursorNode = next ?? view.cursorNode;
    if (view.cursorNode >= 0) view.showTooltip('node', view.cursorNode, layout.x[view.cursorNode], layout.y[view.cursorNode]);
    view.scheduleDraw();
  });
  canvas.addEventListener('blur', () => {
    if (view.cursorNode >= 0 && view.hoverNode < 0) tooltip.hidden = true;
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.activeElement !== canvas && state.pins.length && document.activeElement?.tagName !== 'INPUT') {
      state.pins = [];
      view.update();
    }
  });
}

/**
 * PNG, SVG and JSON (the pinned subgraph) downloads.
 * @param {CircuitView} view
 */
function bindExports(view) {
  const { ui, state } = view;
  const base = `${runId}-circuit-${state.method}`;
  ui.btnPng.addEventListener('click', () => ui.canvas.toBlob((b) => b && download(b, `${base}.png`), 'image/png'));
  ui.btnSvg.addEventListener('click', () => view.lastScene && download(new Blob([sceneToSvg(view.lastScene, `${runId} circuit (${state.method})`)], { type: 'image/svg+xml' }), `${base}.svg`));
  ui.btnJson.addEventListener('click', () => download(new Blob([JSON.stringify(exportSubgraph(view.graph, state), null, 1)], { type: 'application/json' }), `${base}-subgraph.json`));
}

async function main() {
  const { circuit, faith, labels } = await loadCircuit();
  const graph = buildGraph(circuit);
  const { state, notices, fromUrl } = initialState(graph, circuit);
  const ui = buildPage(graph, circuit, notices);
  ui.methodSelect.value = state.method;
  const view = new CircuitView(graph, state, ui, { faith, labels, edges: circuit.links.length });
  bindControls(view);
  bindPointer(view);
  bindKeyboard(view);
  bindExports(view);
  new ResizeObserver(() => {
    const before = view.cssW;
    view.resize();
    if (view.cssW !== before) view.scheduleDraw();
  }).observe(ui.wrap);
  view.resize();
  view.syncControls();
  view.scheduleDraw(fromUrl);
}

main().catch((err) => {
  const status = err instanceof ApiError && err.status ? ` (HTTP ${err.status})` : '';
  showError(root, `Circuit of ${runId} cannot be shown${status}`, err instanceof Error ? err.message : String(err));
  document.body.dataset.ready = '1';
});
