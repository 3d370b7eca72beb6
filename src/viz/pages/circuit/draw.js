/**
 * Drawing the circuit on a <canvas>. Only edges kept by the threshold are drawn, grouped into a
 * few colour/width buckets and stroked as one path per bucket, so ~32k edges draw in one frame
 * without 32k DOM elements. The same buckets feed the SVG export.
 *
 * Props of a frame:
 * @typedef {Object} Scene
 * @property {import('./graph.js').Graph} graph
 * @property {import('./layout.js').Layout} layout
 * @property {import('./graph.js').MethodScores} ms scores of the selected method
 * @property {Int32Array} kept edge indices kept by the threshold, strongest first
 * @property {{nodes: Uint8Array, edges: Uint8Array} | null} paths paths through pins (null = no pins)
 * @property {Set<number> | null} matches node indices matching the search box
 * @property {number} hoverNode node index under the pointer, or -1
 * @property {number} hoverEdge edge index under the pointer, or -1
 * @property {number} cursorNode keyboard cursor node, or -1
 * @property {number} width css px
 * @property {number} height css px
 */
import { NODE_COLORS, edgeColor } from '../shared/colors.js';
import { edgeEnds } from './layout.js';

/** Magnitude buckets per sign. */
export const N_BUCKETS = 8;
/** Alpha of edges off the pinned paths. */
export const FADED_ALPHA = 0.06;

/**
 * Edge groups to stroke, weakest first: each has one colour and width.
 * Bucket of an edge = floor(sqrt(|score| / max|score|) · N_BUCKETS), so mid-sized edges stay visible.
 * @param {Scene} s
 * @returns {{color: string, width: number, edges: number[]}[]}
 */
export function edgeBuckets(s) {
  const pos = Array.from({ length: N_BUCKETS }, () => []);
  const neg = Array.from({ length: N_BUCKETS }, () => /** @type {number[]} */ ([]));
  /** @type {number[]} */
  const faded = [];
  const max = s.ms.maxAbs || 1;
  for (let i = s.kept.length - 1; i >= 0; i--) {
    const e = s.kept[i];
    const v = s.ms.score[e];
    if (s.paths && !s.paths.edges[e]) {
      faded.push(e);
      continue;
    }
    const b = Math.min(N_BUCKETS - 1, Math.floor(Math.sqrt(Math.abs(v) / max) * N_BUCKETS));
    (v < 0 ? neg : pos)[b].push(e);
  }
  const groups = [];
  if (faded.length) groups.push({ color: `rgba(120,120,120,${FADED_ALPHA})`, width: 0.6, edges: faded });
  for (let b = 0; b < N_BUCKETS; b++) {
    const t = (b + 0.5) / N_BUCKETS;
    // With pins, the path edges are few: draw them bolder so they stand out from the faded rest.
    const alpha = s.paths ? 0.75 + 0.25 * t : 0.35 + 0.65 * t;
    const width = (s.paths ? 1.2 : 0.5) + 3.5 * t * t;
    const shade = s.paths ? 0.4 + 0.6 * t : t;
    if (neg[b].length) groups.push({ color: edgeColor(-1, shade, alpha), width, edges: neg[b] });
    if (pos[b].length) groups.push({ color: edgeColor(1, shade, alpha), width, edges: pos[b] });
  }
  return groups;
}

/**
 * Which nodes touch a kept edge (others are drawn faint).
 * @param {Scene} s
 * @returns {Uint8Array} [N]
 */
export function activeNodes(s) {
  const a = new Uint8Array(s.graph.nodes.length);
  for (let i = 0; i < s.kept.length; i++) {
    a[s.graph.src[s.kept[i]]] = 1;
    a[s.graph.dst[s.kept[i]]] = 1;
  }
  return a;
}

/**
 * Fill colour, opacity and rings of node `k`.
 * @param {Scene} s
 * @param {Uint8Array} active
 * @param {number} k
 */
export function nodeStyle(s, active, k) {
  const n = s.graph.nodes[k];
  let alpha = active[k] ? 1 : 0.22;
  if (s.paths) alpha = s.paths.nodes[k] ? 1 : 0.15;
  return {
    fill: NODE_COLORS[n.feature_type] ?? '#888',
    alpha,
    pinned: !!s.paths && s.paths.nodes[k] === 2,
    match: !!s.matches && s.matches.has(k),
    square: n.feature_type !== 'attention',
  };
}

/**
 * Draw a frame.
 * @param {CanvasRenderingContext2D} ctx already scaled to css px
 * @param {Scene} s
 * @returns {{drawnEdges: number}}
 */
export function drawScene(ctx, s) {
  ctx.save();
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, s.width, s.height);
  drawGuides(ctx, s.layout);
  drawEdges(ctx, s);
  drawNodes(ctx, s);
  drawNodeLabels(ctx, s);
  ctx.restore();
  return { drawnEdges: s.kept.length };
}

/**
 * Row guides with their labels (layer, attn / mlp) and the column labels (positions or heads).
 * @param {CanvasRenderingContext2D} ctx
 * @param {Scene['layout']} layout
 */
function drawGuides(ctx, layout) {
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  for (const r of layout.rows) {
    ctx.strokeStyle = r.label.endsWith('attn') ? '#eef1f4' : '#f6f7f8';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(layout.plot.left - 4, r.y);
    ctx.lineTo(layout.plot.right, r.y);
    ctx.stroke();
    if (!r.label.endsWith('mlp') || layout.rows.length < 40) {
      ctx.fillStyle = '#59636e';
      ctx.fillText(r.label, layout.plot.left - 8, r.y);
    }
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const c of layout.cols) {
    ctx.fillStyle = '#59636e';
    if (layout.mode === 'position') {
      ctx.save();
      ctx.translate(c.x, layout.plot.bottom + 12);
      ctx.rotate(-Math.PI / 6);
      ctx.textAlign = 'right';
      ctx.fillText(c.label.length > 14 ? c.label.slice(0, 13) + '…' : c.label, 0, 0);
      ctx.restore();
    } else {
      ctx.fillText(c.label, c.x, layout.plot.bottom + 12);
    }
  }
}

/**
 * The kept edges, one path per color and width bucket, then the hovered edge on top.
 * @param {CanvasRenderingContext2D} ctx
 * @param {Scene} s
 */
function drawEdges(ctx, s) {
  const { layout, graph } = s;
  ctx.lineCap = 'round';
  const buf = new Float64Array(4);
  for (const g of edgeBuckets(s)) {
    ctx.strokeStyle = g.color;
    ctx.lineWidth = g.width;
    ctx.beginPath();
    for (const e of g.edges) {
      edgeEnds(layout, graph, e, buf);
      ctx.moveTo(buf[0], buf[1]);
      ctx.lineTo(buf[2], buf[3]);
    }
    ctx.stroke();
  }
  if (s.hoverEdge >= 0) {
    edgeEnds(layout, graph, s.hoverEdge, buf);
    ctx.strokeStyle = '#111';
    ctx.lineWidth = 3.5;
    ctx.beginPath();
    ctx.moveTo(buf[0], buf[1]);
    ctx.lineTo(buf[2], buf[3]);
    ctx.stroke();
    ctx.strokeStyle = edgeColor(Math.sign(s.ms.score[s.hoverEdge]) || 1, 1);
    ctx.lineWidth = 2;
    ctx.stroke();
  }
}

/**
 * Every node (squares for embedding and logits), with rings for search matches, pins, the cursor
 * and the hovered node.
 * @param {CanvasRenderingContext2D} ctx
 * @param {Scene} s
 */
function drawNodes(ctx, s) {
  const { layout, graph } = s;
  const active = activeNodes(s);
  const r = layout.radius;
  for (let k = 0; k < graph.nodes.length; k++) {
    const st = nodeStyle(s, active, k);
    const x = layout.x[k];
    const y = layout.y[k];
    ctx.globalAlpha = st.alpha;
    ctx.fillStyle = st.fill;
    ctx.beginPath();
    const wide = graph.nodes[k].feature_type === 'embedding' || graph.nodes[k].feature_type === 'logits';
    if (st.square) ctx.rect(x - (wide && layout.mode === 'head' ? 3 * r : r), y - r, (wide && layout.mode === 'head' ? 6 : 2) * r, 2 * r);
    else ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
    ctx.globalAlpha = 1;
    if (st.match) ringAt(ctx, x, y, r + 4, '#d4a000', 3);
    if (st.pinned) ringAt(ctx, x, y, r + 2.5, '#111', 2.5);
  }
  for (const k of [s.cursorNode, s.hoverNode]) {
    if (k < 0) continue;
    ctx.setLineDash(k === s.cursorNode ? [3, 2] : []);
    ringAt(ctx, layout.x[k], layout.y[k], r + 5, '#0969da', 2);
    ctx.setLineDash([]);
  }
}

/**
 * Labels of pinned, hovered and cursor nodes.
 * @param {CanvasRenderingContext2D} ctx
 * @param {Scene} s
 */
function drawNodeLabels(ctx, s) {
  const { layout, graph } = s;
  const r = layout.radius;
  ctx.font = 'bold 11px system-ui, sans-serif';
  ctx.textAlign = 'left';
  ctx.textBaseline = 'bottom';
  const labelled = new Set([s.hoverNode, s.cursorNode]);
  if (s.paths) for (let k = 0; k < graph.nodes.length; k++) if (s.paths.nodes[k] === 2) labelled.add(k);
  for (const k of labelled) {
    if (k < 0) continue;
    const text = graph.nodes[k].node_id;
    const tx = Math.min(layout.x[k] + r + 3, s.width - ctx.measureText(text).width - 4);
    ctx.fillStyle = 'rgba(255,255,255,0.85)';
    ctx.fillRect(tx - 2, layout.y[k] - r - 15, ctx.measureText(text).width + 4, 14);
    ctx.fillStyle = '#111';
    ctx.fillText(text, tx, layout.y[k] - r - 2);
  }
}

function ringAt(ctx, x, y, rad, color, width) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.arc(x, y, rad, 0, 2 * Math.PI);
  ctx.stroke();
}
