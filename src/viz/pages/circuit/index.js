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

async function main() {
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
  const graph = buildGraph(circuit);
  const E = circuit.links.length;
  const notices = [];

  // ---- state, restored from the URL (else from the file's qParams) ----
  const url = parseState(location.search);
  /** @type {{method: string, threshold: number, pins: string[]}} */
  const state = { method: graph.defaultMethod, threshold: 0, pins: [] };
  if (url.method && graph.methods.includes(url.method)) state.method = url.method;
  else if (url.method) notices.push(`The URL asks for method "${url.method}", which this circuit does not have; showing ${state.method}.`);
  let ms = methodScores(graph, state.method);
  state.threshold = url.threshold ?? defaultThreshold(ms, circuit.qParams);
  const wantedPins = url.pins.length ? url.pins : circuit.qParams?.pinnedIds ?? [];
  state.pins = wantedPins.filter((p) => graph.index.has(p));
  const unknown = wantedPins.filter((p) => !graph.index.has(p));
  if (unknown.length) notices.push(`Unknown node id${unknown.length > 1 ? 's' : ''} ignored: ${unknown.join(', ')}`);

  // ---- DOM ----
  const methodSelect = h('select', { id: 'method-select' }, ...graph.methods.map((m) => h('option', { value: m }, m)));
  methodSelect.value = state.method;
  const slider = h('input', { type: 'range', id: 'threshold-slider', min: 0, max: STEPS, step: 1, 'aria-describedby': 'edge-count' });
  const thrInput = h('input', { type: 'number', id: 'threshold-input', min: 0, step: 'any', 'aria-label': '|score| threshold' });
  const edgeCount = h('span', { id: 'edge-count', role: 'status', 'aria-live': 'polite' });
  const search = h('input', { type: 'search', id: 'node-search', list: 'node-id-list', placeholder: 'a9.h6, m0, logits', autocomplete: 'off', 'aria-describedby': 'search-count' });
  const searchCount = h('span', { id: 'search-count', class: 'muted' });
  const datalist = h('datalist', { id: 'node-id-list' }, ...graph.nodes.map((n) => h('option', { value: n.node_id })));
  const clearPins = h('button', { type: 'button', id: 'clear-pins' }, 'Clear pins');
  const btnPng = h('button', { type: 'button', id: 'export-png' }, 'PNG');
  const btnSvg = h('button', { type: 'button', id: 'export-svg' }, 'SVG');
  const btnJson = h('button', { type: 'button', id: 'export-json', title: 'the pinned subgraph (or all kept edges when nothing is pinned)' }, 'JSON');
  const controls = h(
    'div',
    { class: 'controls', role: 'group', 'aria-label': 'circuit controls' },
    h('label', {}, 'Method', methodSelect),
    h('label', {}, '|score| ≥', slider),
    thrInput,
    edgeCount,
    h('label', {}, 'Find node', search),
    searchCount,
    datalist,
    clearPins,
    h('span', { class: 'export-group', role: 'group', 'aria-label': 'export' }, h('span', { class: 'muted' }, 'Export:'), btnPng, btnSvg, btnJson),
  );
  const canvas = h('canvas', { id: 'circuit-canvas', tabindex: 0, role: 'img', 'aria-label': 'circuit graph; arrow keys move between nodes, Enter pins, Escape clears pins' });
  const tooltip = h('div', { class: 'tooltip', id: 'tooltip', role: 'tooltip', hidden: true });
  const wrap = h('div', { class: 'canvas-wrap' }, canvas, tooltip);
  const pinList = h('div', { class: 'pin-list', id: 'pin-list' });
  const legend = h('div', { id: 'legend' });
  const faithEl = h('div', { class: 'faith', id: 'faithfulness' });
  const meta = circuit.metadata ?? {};
  const noticeEl = h('div', { id: 'notices' }, ...notices.map((n) => h('p', { class: 'notice', role: 'status' }, n)));
  root.replaceChildren(
    h('p', { class: 'muted', id: 'circuit-meta' }, [meta.model && `model ${meta.model}`, meta.task && `task ${meta.task}`, `${graph.nodes.length} nodes`, `${E.toLocaleString('en-US')} edges`, `methods: ${graph.methods.join(', ')}`].filter(Boolean).join(' · ')),
    noticeEl,
    controls,
    h('div', { class: 'circuit-body' }, wrap, h('aside', { class: 'side' }, h('h3', {}, 'Pinned nodes'), pinList, legend, faithEl)),
  );

  // ---- view state that is not in the URL ----
  let layout = null;
  let cssW = 0;
  let cssH = 0;
  let kept = keptEdges(ms, state.threshold);
  let paths = null;
  let matches = null;
  let hoverNode = -1;
  let hoverEdge = -1;
  let cursorNode = -1;
  let lastScene = null;

  const recompute = () => {
    ms = methodScores(graph, state.method);
    kept = keptEdges(ms, state.threshold);
    const pinIdx = state.pins.map((p) => graph.index.get(p)).filter((k) => k !== undefined);
    paths = pinIdx.length ? pathsThrough(graph, kept, pinIdx) : null;
    if (hoverEdge >= 0 && !(Math.abs(ms.score[hoverEdge]) >= state.threshold)) hoverEdge = -1;
  };
  recompute();

  const syncControls = () => {
    slider.value = String(thresholdToSlider(state.threshold, ms.minAbsNonzero, ms.maxAbs, STEPS));
    slider.disabled = !(ms.maxAbs > ms.minAbsNonzero);
    slider.setAttribute('aria-valuetext', `|score| ≥ ${fmt(state.threshold)}, ${kept.length} edges`);
    if (document.activeElement !== thrInput) thrInput.value = String(Number(state.threshold.toPrecision(6)));
    edgeCount.dataset.count = String(kept.length);
    edgeCount.textContent = `${kept.length.toLocaleString('en-US')} of ${E.toLocaleString('en-US')} edges${paths ? ` · ${paths.edgeCount.toLocaleString('en-US')} on pinned paths` : ''}`;
    pinList.replaceChildren(
      ...(state.pins.length
        ? state.pins.map((p) => h('button', { type: 'button', 'data-pin': p, 'aria-label': `unpin ${p}`, onclick: () => togglePin(graph.index.get(p)) }, `${p} ×`))
        : [h('span', { class: 'muted' }, 'none: click a node')]),
    );
    renderLegend(legend, { maxAbs: ms.maxAbs, method: state.method });
    if (faith && faith.length) renderFaithfulness(faithEl, { curves: faith, keptEdges: kept.length, method: state.method });
  };

  // ---- drawing ----
  const resize = () => {
    const w = Math.max(600, Math.floor(wrap.clientWidth));
    const rows = 2 * (Math.max(...graph.nodes.map((n) => (n.feature_type === 'logits' ? 0 : n.layer + 1)), 0)) + 2;
    // Fit the whole graph in the window when possible (about 22–30 px per row).
    const fit = Math.max(520, window.innerHeight - (wrap.getBoundingClientRect().top + window.scrollY) - 16);
    const hgt = Math.max(420, Math.min(1000, rows * 30 + 90, fit));
    if (w === cssW && hgt === cssH && layout) return;
    cssW = w;
    cssH = hgt;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${hgt}px`;
    layout = layoutGraph(graph.nodes, { width: w, height: hgt, labels });
  };
  let frame = 0;
  let urlDirty = false;
  const scheduleDraw = (updateUrl = false) => {
    urlDirty = urlDirty || updateUrl;
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      const ctx = canvas.getContext('2d');
      if (!ctx) return;
      const dpr = window.devicePixelRatio || 1;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      lastScene = { graph, layout, ms, kept, paths, matches, hoverNode, hoverEdge, cursorNode, width: cssW, height: cssH };
      const t0 = performance.now();
      const { drawnEdges } = drawScene(ctx, lastScene);
      canvas.dataset.drawnEdges = String(drawnEdges);
      canvas.dataset.drawMs = (performance.now() - t0).toFixed(1);
      if (urlDirty) {
        urlDirty = false;
        history.replaceState(null, '', `${location.pathname}${serializeState(state)}`);
      }
      if (!document.body.dataset.ready) {
        // Milliseconds from navigation start to the first drawn frame (read by bench/viewer-load.ts).
        document.body.dataset.readyMs = performance.now().toFixed(0);
        document.body.dataset.ready = '1';
      }
    });
  };
  const update = (updateUrl = true) => {
    recompute();
    syncControls();
    scheduleDraw(updateUrl);
  };

  // ---- interactions ----
  function togglePin(k) {
    if (k === undefined || k < 0) return;
    const id = graph.nodes[k].node_id;
    state.pins = state.pins.includes(id) ? state.pins.filter((p) => p !== id) : [...state.pins, id];
    update();
  }
  methodSelect.addEventListener('change', () => {
    const keepCount = kept.length;
    state.method = methodSelect.value;
    // Keep the same number of edges: methods have different score scales.
    state.threshold = thresholdForTopK(methodScores(graph, state.method), Math.max(keepCount, 1));
    update();
  });
  slider.addEventListener('input', () => {
    state.threshold = sliderToThreshold(Number(slider.value), ms.minAbsNonzero, ms.maxAbs, STEPS);
    update();
  });
  thrInput.addEventListener('change', () => {
    const v = Number(thrInput.value);
    if (Number.isFinite(v) && v >= 0) {
      state.threshold = v;
      update();
    } else thrInput.value = String(state.threshold);
  });
  clearPins.addEventListener('click', () => {
    state.pins = [];
    update();
  });
  const findMatches = (q) => {
    const s = q.trim().toLowerCase();
    if (!s) return null;
    const out = new Set();
    graph.nodes.forEach((n, k) => n.node_id.toLowerCase().includes(s) && out.add(k));
    return out;
  };
  search.addEventListener('input', () => {
    matches = findMatches(search.value);
    searchCount.textContent = matches ? `${matches.size} match${matches.size === 1 ? '' : 'es'}` : '';
    scheduleDraw();
  });
  search.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    const exact = graph.index.get(search.value.trim());
    const k = exact ?? (matches && matches.size ? [...matches][0] : undefined);
    if (k === undefined) return;
    cursorNode = k;
    if (!state.pins.includes(graph.nodes[k].node_id)) togglePin(k);
    else scheduleDraw();
  });

  const localXY = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  };
  const showTooltip = (kind, index, x, y) => {
    if (index < 0) {
      tooltip.hidden = true;
      return;
    }
    tooltip.replaceChildren(...tooltipContent({ graph, kind, index, labels, method: state.method }));
    tooltip.hidden = false;
    const left = Math.min(x + 14, cssW - 240);
    tooltip.style.left = `${Math.max(4, left)}px`;
    tooltip.style.top = `${Math.max(4, y + 14)}px`;
  };
  // Hover hit-testing runs at most once per animation frame.
  let pending = null;
  let hoverQueued = false;
  canvas.addEventListener('pointermove', (ev) => {
    pending = localXY(ev);
    if (hoverQueued) return;
    hoverQueued = true;
    requestAnimationFrame(() => {
      hoverQueued = false;
      if (!pending || !layout) return;
      const [x, y] = pending;
      pending = null;
      const n = nearestNode(layout, x, y, layout.radius + 4);
      const e = n < 0 ? nearestEdge(layout, graph, kept, x, y, 4) : -1;
      if (n !== hoverNode || e !== hoverEdge) {
        hoverNode = n;
        hoverEdge = e;
        scheduleDraw();
      }
      if (n >= 0) showTooltip('node', n, x, y);
      else if (e >= 0) showTooltip('edge', e, x, y);
      else showTooltip('node', -1, 0, 0);
    });
  });
  canvas.addEventListener('pointerleave', () => {
    pending = null;
    hoverNode = hoverEdge = -1;
    tooltip.hidden = true;
    scheduleDraw();
  });
  canvas.addEventListener('click', (ev) => {
    if (!layout) return;
    const [x, y] = localXY(ev);
    const n = nearestNode(layout, x, y, layout.radius + 4);
    if (n >= 0) {
      cursorNode = n;
      togglePin(n);
    }
  });
  // Keyboard: arrows move a cursor through the nodes, Enter/Space pins, Escape clears pins.
  const byPosition = () => graph.nodes.map((_, k) => k).sort((a, b) => layout.y[b] - layout.y[a] || layout.x[a] - layout.x[b]);
  canvas.addEventListener('keydown', (ev) => {
    if (!layout) return;
    const order = byPosition();
    const at = cursorNode >= 0 ? order.indexOf(cursorNode) : -1;
    let next = cursorNode;
    if (ev.key === 'ArrowRight') next = order[Math.min(order.length - 1, at + 1)];
    else if (ev.key === 'ArrowLeft') next = order[Math.max(0, at - 1)];
    else if (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') {
      const cur = cursorNode >= 0 ? cursorNode : order[0];
      const up = ev.key === 'ArrowUp';
      let best = -1;
      let bestScore = Infinity;
      for (const k of order) {
        const dy = layout.y[cur] - layout.y[k];
        if (up ? dy <= 0.5 : dy >= -0.5) continue;
        const score = Math.abs(dy) * 1000 + Math.abs(layout.x[k] - layout.x[cur]);
        if (score < bestScore) (bestScore = score), (best = k);
      }
      if (best >= 0) next = best;
    } else if ((ev.key === 'Enter' || ev.key === ' ') && cursorNode >= 0) {
      ev.preventDefault();
      togglePin(cursorNode);
      return;
    } else if (ev.key === 'Escape') {
      state.pins = [];
      update();
      return;
    } else return;
    ev.preventDefault();
    cursorNode = next ?? cursorNode;
    if (cursorNode >= 0) showTooltip('node', cursorNode, layout.x[cursorNode], layout.y[cursorNode]);
    scheduleDraw();
  });
  canvas.addEventListener('blur', () => {
    if (cursorNode >= 0 && hoverNode < 0) tooltip.hidden = true;
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.activeElement !== canvas && state.pins.length && document.activeElement?.tagName !== 'INPUT') {
      state.pins = [];
      update();
    }
  });

  const base = `${runId}-circuit-${state.method}`;
  btnPng.addEventListener('click', () => canvas.toBlob((b) => b && download(b, `${base}.png`), 'image/png'));
  btnSvg.addEventListener('click', () => lastScene && download(new Blob([sceneToSvg(lastScene, `${runId} circuit (${state.method})`)], { type: 'image/svg+xml' }), `${base}.svg`));
  btnJson.addEventListener('click', () => download(new Blob([JSON.stringify(exportSubgraph(graph, state), null, 1)], { type: 'application/json' }), `${base}-subgraph.json`));

  new ResizeObserver(() => {
    const before = cssW;
    resize();
    if (cssW !== before) scheduleDraw();
  }).observe(wrap);
  resize();
  syncControls();
  scheduleDraw(url.method !== null || url.threshold !== null || url.pins.length > 0);
}

main().catch((err) => {
  const status = err instanceof ApiError && err.status ? ` (HTTP ${err.status})` : '';
  showError(root, `Circuit of ${runId} cannot be shown${status}`, err instanceof Error ? err.message : String(err));
  document.body.dataset.ready = '1';
});
