/**
 * A local stand-in for the Hugging Face Hub, for download tests. Two HTTP servers on 127.0.0.1
 * (random ports, so two origins): the "hub" answers the listing API and resolve URLs, and
 * redirects LFS files to the "cdn", as huggingface.co does.
 *
 * - `GET /api/models/{repo}/revision/{rev}[?blobs=true]` -> `{id, sha, siblings: [{rfilename, size?, lfs?}]}`
 * - `HEAD|GET /{repo}/resolve/{rev}/{file}`: small files 200 with the git blob sha1 as ETag;
 *   LFS files 302 to the cdn with `X-Linked-Etag` (sha256) and `X-Linked-Size`.
 * - `HEAD|GET /cdn/{sha256}` on the cdn: the bytes, with `Range: bytes=n-` support (206/416).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

/** A file of the fake repo. */
export interface HubRepoFile {
  path: string;
  data: Uint8Array;
  /** Stored in LFS (served through the cdn redirect with a sha256). Default: `.safetensors` files. */
  lfs?: boolean;
}

/** Options for {@link startHubServer}. */
export interface HubServerOptions {
  repoId: string;
  /** The only revision that exists (default `main`). */
  revision?: string;
  files: HubRepoFile[];
  /** When set, every hub request (not cdn) must carry `Authorization: Bearer <token>`, else 401. */
  token?: string;
  /** Answer 404 on the listing API, like a mirror without it. */
  noApi?: boolean;
}

/** One request seen by the hub or the cdn. */
export interface RecordedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  authorization: string | undefined;
  range: string | undefined;
}

/** A running fake hub. Mutate the public fields between calls to script failures. */
export interface HubServer {
  /** Base URL of the hub, e.g. `http://127.0.0.1:40123`. */
  endpoint: string;
  /** Base URL of the cdn. */
  cdnEndpoint: string;
  requests: RecordedRequest[];
  /** Cut the next GET body of these files after that many bytes (then close the socket). Used once. */
  cutNext: Map<string, number>;
  /** Serve these files with one byte flipped while announcing the true hashes. */
  corrupt: Set<string>;
  /** Ignore Range headers (answer 200 with the whole file). */
  ignoreRange: boolean;
  sha256(path: string): string;
  close(): Promise<void>;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Git blob id: sha1 of `blob <len>\0<content>` (the hub's ETag for small files). */
export function gitBlobSha1(data: Uint8Array): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

function listen(server: Server): Promise<number> {
  return new Promise((resolveP, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolveP((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveP) => {
    server.close(() => resolveP());
    server.closeAllConnections();
  });
}

/** Start the fake hub and cdn. Call `close()` when done. */
export async function startHubServer(opts: HubServerOptions): Promise<HubServer> {
  const revision = opts.revision ?? 'main';
  const files = new Map(opts.files.map((f) => [f.path, { ...f, lfs: f.lfs ?? f.path.endsWith('.safetensors') }]));
  const bySha = new Map<string, string>();
  for (const f of files.values()) if (f.lfs) bySha.set(sha256Hex(f.data), f.path);

  const state: HubServer = {
    endpoint: '',
    cdnEndpoint: '',
    requests: [],
    cutNext: new Map(),
    corrupt: new Set(),
    ignoreRange: false,
    sha256: (p) => sha256Hex(files.get(p)!.data),
    close: async () => {
      await Promise.all([closeServer(hub), closeServer(cdn)]);
    },
  };

  const record = (server: 'hub' | 'cdn', req: IncomingMessage) => {
    state.requests.push({
      server,
      method: req.method ?? '',
      path: decodeURI(req.url ?? ''),
      authorization: req.headers.authorization,
      range: req.headers.range,
    });
  };

  const fail = (res: ServerResponse, status: number, message: string, code?: string) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Message': message, ...(code ? { 'X-Error-Code': code } : {}) });
    res.end(JSON.stringify({ error: message }));
  };

  /** Send `data` honouring Range, cutting the body short when scripted. */
  const sendBytes = (req: IncomingMessage, res: ServerResponse, path: string, headers: Record<string, string>) => {
    let data = files.get(path)!.data;
    if (state.corrupt.has(path)) {
      data = Uint8Array.from(data);
      data[data.length >> 1] ^= 0xff;
    }
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !state.ignoreRange) {
      start = Number(range[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}` });
        res.end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    }
    const body = data.subarray(start);
    res.writeHead(status, { ...headers, 'Accept-Ranges': 'bytes', 'Content-Length': String(body.length), 'Content-Type': 'application/octet-stream' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const cut = state.cutNext.get(path);
    if (cut !== undefined) {
      state.cutNext.delete(path);
      // Announce the full length, send part of it, then drop the connection. The pause lets the
      // client consume the bytes first: a fetch body stream that errors drops its queued chunks.
      res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 150));
      return;
    }
    res.end(body);
  };

  const hub = createServer((req, res) => {
    record('hub', req);
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      fail(res, 401, 'Invalid credentials in Authorization header');
      return;
    }
    const api = `/api/models/${opts.repoId}/revision/`;
    if (path.startsWith('/api/models/')) {
      if (opts.noApi) return fail(res, 404, 'Not Found');
      if (!path.startsWith(api)) return fail(res, 404, 'Repository not found', 'RepoNotFound');
      if (path.slice(api.length) !== revision) return fail(res, 404, `Invalid rev id: ${path.slice(api.length)}`, 'RevisionNotFound');
      const blobs = url.searchParams.get('blobs') === 'true';
      const siblings = [...files.values()].map((f) => ({
        rfilename: f.path,
        ...(blobs
          ? { blobId: gitBlobSha1(f.data), size: f.data.length, ...(f.lfs ? { lfs: { sha256: sha256Hex(f.data), size: f.data.length, pointerSize: 134 } } : {}) }
          : {}),
      }));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: opts.repoId, sha: 'f'.repeat(40), siblings }));
      return;
    }
    const prefix = `/${opts.repoId}/resolve/`;
    if (!path.startsWith(prefix)) return fail(res, 404, 'Repository not found', 'RepoNotFound');
    const rest = path.slice(prefix.length);
    if (!rest.startsWith(`${revision}/`)) return fail(res, 404, 'Invalid rev id', 'RevisionNotFound');
    const file = rest.slice(revision.length + 1);
    const f = files.get(file);
    if (!f) return fail(res, 404, 'Entry not found', 'EntryNotFound');
    if (f.lfs) {
      const sha = sha256Hex(f.data);
      res.writeHead(302, {
        Location: `${state.cdnEndpoint}/cdn/${sha}`,
        'X-Linked-Etag': `"${sha}"`,
        'X-Linked-Size': String(f.data.length),
        ETag: `"${sha}"`,
        'X-Repo-Commit': 'f'.repeat(40),
      });
      res.end();
      return;
    }
    sendBytes(req, res, file, { ETag: `"${gitBlobSha1(f.data)}"`, 'X-Repo-Commit': 'f'.repeat(40) });
  });

  const cdn = createServer((req, res) => {
    record('cdn', req);
    const m = /^\/cdn\/([0-9a-f]{64})$/.exec(req.url ?? '');
    const path = m ? bySha.get(m[1]) : undefined;
    if (!path) return fail(res, 404, 'NoSuchKey');
    sendBytes(req, res, path, { ETag: `"${m![1]}"` });
  });

  state.endpoint = `http://127.0.0.1:${await listen(hub)}`;
  state.cdnEndpoint = `http://127.0.0.1:${await listen(cdn)}`;
  return state;
}
