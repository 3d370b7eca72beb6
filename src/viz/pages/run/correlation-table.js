/**
 * The correlation table: rows = components, columns = methods, each cell Pearson r (Spearman ρ
 * below) with activation patching (magnitude methods with |activation|), laid out like Table 1 of
 * the RelP paper. The best |r| per row is bold; a cell without a correlation says why.
 *
 * Props (`/api/runs/:id/correlations`): the one correlation table of relp (src/patching/correlation.ts).
 * @typedef {import('../../../patching/correlation.ts').CorrelationTable} CorrelationTableProps
 */
import { h } from '../shared/dom.js';
import { fmt } from '../shared/format.js';

/**
 * Render the table into `el` (replacing its content).
 * @param {HTMLElement} el
 * @param {CorrelationTableProps} props
 */
export function renderCorrelationTable(el, props) {
  if (props.rows.length === 0) {
    el.replaceChildren(h('p', { class: 'muted', id: 'corr-empty' }, `No correlations: the run has no ${props.reference} patching scores to compare with.`));
    return;
  }
  const body = props.rows.map((row) => {
    const best = Math.max(...props.methods.map((m) => Math.abs(row.cells[m]?.pearson ?? -1)));
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, row.component),
      ...props.methods.map((m) => {
        const c = row.cells[m];
        if (!c) return h('td', { class: 'num' }, '–');
        if (c.pearson === null) return h('td', { class: 'num corr-none', title: c.reason, 'data-kind': c.kind }, `– (${props.noCorrelation.find((g) => g.reason === c.reason)?.tag ?? c.kind})`);
        const isBest = c.pearson !== null && Math.abs(c.pearson) === best;
        return h('td', { class: 'num', title: `n = ${c.n} cells, against ${props.against[m]}` }, h('span', { class: isBest ? 'corr-best' : '' }, fmt(c.pearson, 3)), h('br'), h('span', { class: 'corr-sub' }, `ρ ${fmt(c.spearman, 3)}`));
      }),
    );
  });
  el.replaceChildren(
    h(
      'table',
      { class: 'data', id: 'corr-table' },
      h('caption', {}, `Correlation with ${props.reference} patching: Pearson r (Spearman ρ below), over all cells of each component`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'component'), ...props.methods.map((m) => h('th', { scope: 'col', class: 'num' }, props.against[m] === props.reference ? m : `${m} vs ${props.against[m]}`)))),
      h('tbody', {}, ...body),
    ),
    // Same notes as the terminal table: cells without a correlation and why, and methods that score magnitudes.
    ...props.noCorrelation.map((g) => h('p', { class: 'muted corr-note', 'data-kind': g.kind }, `note: – (${g.tag}) ${g.where}: no correlation: ${g.reason}`)),
    ...props.methods.filter((m) => props.notes[m]).map((m) => h('p', { class: 'muted corr-note', 'data-method': m }, `note: ${props.notes[m]}`)),
  );
}
