/**
 * Exports of the circuit view: PNG (the canvas), SVG (rebuilt from the same edge buckets) and
 * JSON (the pinned subgraph, see graph.js `exportSubgraph`).
 */
import { activeNodes, edgeBuckets, nodeStyle } from './draw.js';
import { edgeEnds } from './layout.js';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const f = (x) => (Math.round(x * 10) / 10).toString();

/**
 * The current frame as a standalone SVG document.
 * @param {import('./draw.js').Scene} s
 * @param {string} title
 * @returns {string}
 */
export function sceneToSvg(s, title) {
  const { layout, graph } = s;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${f(s.width)}" height="${f(s.height)}" viewBox="0 0 ${f(s.width)} ${f(s.height)}" font-family="system-ui, sans-serif" font-size="11">`);
  out.push(`<title>${esc(title)}</title><rect width="100%" height="100%" fill="#fff"/>`);
  for (const r of layout.rows) out.push(`<text x="${f(layout.plot.left - 8)}" y="${f(r.y)}" text-anchor="end" dominant-baseline="middle" fill="#59636e">${esc(r.label)}</text>`);
  for (const c of layout.cols) out.push(`<text x="${f(c.x)}" y="${f(layout.plot.bottom + 22)}" text-anchor="middle" fill="#59636e">${esc(c.label)}</text>`);
  const buf = new Float64Array(4);
  for (const g of edgeBuckets(s)) {
    const d = [];
    for (const e of g.edges) {
      edgeEnds(layout, graph, e, buf);
      d.push(`M${f(buf[0])} ${f(buf[1])}L${f(buf[2])} ${f(buf[3])}`);
    }
    out.push(`<path d="${d.join('')}" stroke="${g.color}" stroke-width="${f(g.width)}" stroke-linecap="round" fill="none"/>`);
  }
  const active = activeNodes(s);
  const r = layout.radius;
  for (let k = 0; k < graph.nodes.length; k++) {
    const st = nodeStyle(s, active, k);
    const x = layout.x[k];
    const y = layout.y[k];
    const id = esc(graph.nodes[k].node_id);
    const shape = st.square ? `<rect x="${f(x - r)}" y="${f(y - r)}" width="${f(2 * r)}" height="${f(2 * r)}"` : `<circle cx="${f(x)}" cy="${f(y)}" r="${f(r)}"`;
    out.push(`${shape} fill="${st.fill}" fill-opacity="${st.alpha}"${st.pinned ? ' stroke="#111" stroke-width="2"' : ''}><title>${id}</title>${st.square ? '</rect>' : '</circle>'}`);
  }
  out.push('</svg>');
  return out.join('\n');
}

/**
 * Offer `blob` as a download named `name` (via a temporary object URL).
 * @param {Blob} blob
 * @param {string} name
 */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
