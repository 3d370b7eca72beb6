/** Fetching the viewer's JSON API. */

/** An API error: HTTP status and the server's specific message. */
export class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * GET a JSON endpoint.
 * @param {string} url
 * @returns {Promise<any>} the parsed body
 * @throws {ApiError} with the server's `{error: {message}}` when the status is not 2xx
 */
export async function getJson(url) {
  let res;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch (err) {
    throw new ApiError(0, `cannot reach the viewer server (${err instanceof Error ? err.message : String(err)})`);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    if (res.ok) throw new ApiError(res.status, `${url} did not return JSON`);
  }
  if (!res.ok) throw new ApiError(res.status, body?.error?.message ?? `${url} failed with HTTP ${res.status}`);
  return body;
}

/**
 * The run id the server put on <body data-run-id>.
 * @returns {string}
 */
export function pageRunId() {
  return document.body.dataset.runId ?? '';
}

/**
 * API URL of a run resource.
 * @param {string} id run id
 * @param {'' | 'circuit' | 'faithfulness' | 'correlations'} [what]
 */
export function runApi(id, what = '') {
  return `/api/runs/${encodeURIComponent(id)}${what ? `/${what}` : ''}`;
}
