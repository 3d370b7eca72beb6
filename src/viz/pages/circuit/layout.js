/**
 * Node positions of the circuit: y = layer (input at the bottom, logits at the top; within a layer
 * the attention row sits below the MLP row, as in the forward pass), x = head (graphs summed over
 * positions) or token position (position-resolved graphs, heads fanned out inside each column).
 * Pure function of the nodes and the drawing size.
 */

/**
 * @typedef {import('./graph.js').CircuitNode} CircuitNode
 *
 * @typedef {Object} Layout
 * @property {Float64Array} x [N] css px
 * @property {Float64Array} y [N] css px
 * @property {'head' | 'position'} mode
 * @property {number} nLayers
 * @property {number} nHeads
 * @property {number} nPos columns in position mode (0 in head mode)
 * @property {number} radius node radius in css px
 * @property {{y: number, label: string}[]} rows row labels (left margin)
 * @property {{x: number, label: string}[]} cols column labels (bottom margin)
 * @property {{left: number, right: number, top: number, bottom: number}} plot drawing area
 */

/**
 * Head index of a node: `head`, else the `h{n}` in its id (e.g. "a3.h7" -> 7), else 0.
 * @param {CircuitNode} n
 */
export function headOf(n) {
  if (typeof n.head === 'number' && Number.isInteger(n.head)) return n.head;
  const m = /\.h(\d+)/.exec(n.node_id);
  return m ? Number(m[1]) : 0;
}

/**
 * Lay the nodes out.
 * @param {CircuitNode[]} nodes
 * @param {{width: number, height: number, labels?: string[]}} size css px; `labels` are tokens for position columns
 * @returns {Layout}
 */
export function layoutGraph(nodes, size) {
  const N = nodes.length;
  const x = new Float64Array(N);
  const y = new Float64Array(N);
  let nLayers = 0;
  let nHeads = 1;
  let nPos = 0;
  let positional = false;
  for (const n of nodes) {
    if (n.feature_type === 'attention' || n.feature_type === 'mlp') nLayers = Math.max(nLayers, n.layer + 1);
    if (n.feature_type === 'attention') nHeads = Math.max(nHeads, headOf(n) + 1);
    if (n.ctx_idx !== null && n.ctx_idx !== undefined && n.feature_type !== 'logits') {
      positional = true;
      nPos = Math.max(nPos, n.ctx_idx + 1);
    }
  }
  const labels = size.labels ?? [];
  const plot = { left: 58, right: size.width - 16, top: 18, bottom: size.height - (positional ? 64 : 34) };
  const W = plot.right - plot.left;
  // Rows: 0 = input, 1 + 2l = attention of layer l, 2 + 2l = MLP of layer l, 2L + 1 = logits.
  const nRows = 2 * nLayers + 2;
  const rowY = (r) => plot.bottom - (r * (plot.bottom - plot.top)) / Math.max(nRows - 1, 1);
  const rowOf = (n) => {
    if (n.feature_type === 'embedding') return 0;
    if (n.feature_type === 'logits') return nRows - 1;
    const l = Math.max(0, Math.min(n.layer, nLayers - 1));
    return n.feature_type === 'attention' ? 1 + 2 * l : 2 + 2 * l;
  };
  const colW = positional ? W / Math.max(nPos, 1) : W / nHeads;
  const center = plot.left + W / 2;
  nodes.forEach((n, k) => {
    y[k] = rowY(rowOf(n));
    const p = n.ctx_idx;
    if (positional && p !== null && p !== undefined) {
      const c0 = plot.left + p * colW;
      x[k] = n.feature_type === 'attention' ? c0 + ((headOf(n) + 1) * colW) / (nHeads + 1) : c0 + colW / 2;
    } else if (n.feature_type === 'attention') {
      x[k] = plot.left + (headOf(n) + 0.5) * colW;
    } else {
      x[k] = center;
    }
  });
  const rows = [{ y: rowY(0), label: 'input' }];
  for (let l = 0; l < nLayers; l++) rows.push({ y: rowY(1 + 2 * l), label: `L${l} attn` }, { y: rowY(2 + 2 * l), label: `L${l} mlp` });
  rows.push({ y: rowY(nRows - 1), label: 'logits' });
  const cols = positional
    ? Array.from({ length: nPos }, (_, p) => ({ x: plot.left + (p + 0.5) * colW, label: labels[p] !== undefined ? JSON.stringify(labels[p]) : `pos ${p}` }))
    : Array.from({ length: nHeads }, (_, hd) => ({ x: plot.left + (hd + 0.5) * colW, label: `h${hd}` }));
  const rowGap = (plot.bottom - plot.top) / Math.max(nRows - 1, 1);
  const slot = positional ? colW / (nHeads + 1) : colW;
  const radius = Math.max(2, Math.min(7, rowGap * 0.3, slot * 0.38));
  return { x, y, mode: positional ? 'position' : 'head', nLayers, nHeads, nPos, radius, rows, cols, plot };
}

/**
 * Index of the node nearest (x, y) within `maxDist` css px, or -1.
 * @param {Layout} layout
 * @param {number} px
 * @param {number} py
 * @param {number} maxDist
 */
export function nearestNode(layout, px, py, maxDist) {
  let best = -1;
  let bestD = maxDist * maxDist;
  for (let k = 0; k < layout.x.length; k++) {
    const dx = layout.x[k] - px;
    const dy = layout.y[k] - py;
    const d = dx * dx + dy * dy;
    if (d <= bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

/**
 * Squared distance from point p to segment a–b.
 * @returns {number}
 */
export function segmentDist2(px, py, ax, ay, bx, by) {
  const vx = bx - ax;
  const vy = by - ay;
  const len2 = vx * vx + vy * vy;
  const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - ax) * vx + (py - ay) * vy) / len2)) : 0;
  const dx = ax + t * vx - px;
  const dy = ay + t * vy - py;
  return dx * dx + dy * dy;
}

/**
 * End points of edge `e`: from the top of the source node to the bottom of the target node;
 * q / k / v inputs of a head enter left / centre / right so the three are told apart.
 * @param {Layout} layout
 * @param {import('./graph.js').Graph} g
 * @param {number} e edge index
 * @param {Float64Array} [out] reused [4] buffer
 * @returns {Float64Array} [ax, ay, bx, by]
 */
export function edgeEnds(layout, g, e, out = new Float64Array(4)) {
  const r = layout.radius;
  const s = g.src[e];
  const t = g.dst[e];
  const code = g.input[e];
  out[0] = layout.x[s];
  out[1] = layout.y[s] - r;
  out[2] = layout.x[t] + (code ? (code - 2) * r * 0.8 : 0);
  out[3] = layout.y[t] + r;
  return out;
}

/**
 * The kept edge nearest (x, y) within `maxDist` css px, or -1. Only the `limit` strongest kept
 * edges are tested, so hovering stays cheap with tens of thousands drawn.
 * @param {Layout} layout
 * @param {import('./graph.js').Graph} g
 * @param {Int32Array} kept edge indices, strongest first
 * @param {number} px
 * @param {number} py
 * @param {number} maxDist
 * @param {number} [limit]
 */
export function nearestEdge(layout, g, kept, px, py, maxDist, limit = 6000) {
  let best = -1;
  let bestD = maxDist * maxDist;
  const buf = new Float64Array(4);
  const n = Math.min(kept.length, limit);
  for (let i = 0; i < n; i++) {
    const e = kept[i];
    edgeEnds(layout, g, e, buf);
    const d = segmentDist2(px, py, buf[0], buf[1], buf[2], buf[3]);
    if (d < bestD) {
      bestD = d;
      best = e;
    }
  }
  return best;
}
