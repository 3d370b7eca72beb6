/** Entry of the index page: fetch `/api/runs` and render the runs table. */
import { getJson } from '../shared/api.js';
import { byId, showError } from '../shared/dom.js';
import { renderRunsTable } from './runs-table.js';

const el = byId('runs');
try {
  const { runs } = await getJson('/api/runs');
  renderRunsTable(el, { runs });
} catch (err) {
  showError(el, 'Cannot list runs', err instanceof Error ? err.message : String(err));
}
document.body.dataset.ready = '1';
