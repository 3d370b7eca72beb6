import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promises as fs, readFileSync } from 'node:fs';
import { startViewer, type RunningViewer } from '../../src/viz/server.ts';
import { makeRunsFixture, SECRET, type RunsFixture } from './helpers/runs-fixture.ts';

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with the path sent byte for byte (fetch would normalise `..` and backslashes). */
function raw(v: RunningViewer, rawPath: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: v.address.address, port: v.address.port, path: rawPath, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('viewer server', () => {
  let fx: RunsFixture;
  let v: RunningViewer;
  beforeAll(async () => {
    fx = await makeRunsFixture();
    // A run whose error message would carry markup if not escaped.
    await fs.mkdir(path.join(fx.runsDir, 'xss'));
    const run = JSON.parse(readFileSync(path.join(fx.runsDir, 'ioi-small', 'run.json'), 'utf8'));
    run.scores.relp.z.axes = ['<img src=x onerror=alert(1)>'];
    await fs.writeFile(path.join(fx.runsDir, 'xss', 'run.json'), JSON.stringify(run));
    v = await startViewer({ runsDir: fx.runsDir, port: 0 });
  });
  afterAll(async () => {
    await v?.close();
    await fx?.cleanup();
  });

  it('binds 127.0.0.1 only and reports that address', async () => {
    expect(v.address.address).toBe('127.0.0.1');
    expect(v.url).toBe(`http://127.0.0.1:${v.address.port}/`);
    // Not reachable on any other interface of this machine.
    const others = Object.values(os.networkInterfaces()).flat().filter((i) => i && !i.internal && i.family === 'IPv4');
    for (const i of others) {
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: i!.address, port: v.address.port });
        s.once('connect', () => (s.destroy(), resolve(false)));
        s.once('error', () => resolve(true));
      });
      expect(refused, `port open on ${i!.address}`).toBe(true);
    }
  });

  it('sets strict security headers everywhere; only the plotly page allows inline styles', async () => {
    for (const p of ['/', '/runs/ioi-small', '/runs/ioi-small/circuit', '/api/runs', '/api/runs/ioi-small', '/static/shared/style.css', '/vendor/plotly.js', '/nope', '/runs/broken']) {
      const r = await raw(v, p, { method: 'HEAD' });
      const csp = String(r.headers['content-security-policy']);
      expect(csp, p).toContain("script-src 'self'");
      expect(csp, p).toContain("default-src 'none'");
      expect(csp, p).toContain("frame-ancestors 'none'");
      expect(csp, p).not.toContain('unsafe-eval');
      expect(csp.includes("'unsafe-inline'"), p).toBe(p === '/runs/ioi-small');
      expect(r.headers['x-content-type-options'], p).toBe('nosniff');
      expect(r.headers['x-frame-options'], p).toBe('DENY');
      expect(r.headers['referrer-policy'], p).toBe('no-referrer');
      expect(r.headers['x-powered-by'], p).toBeUndefined();
    }
  });

  it('serves pages without inline scripts or style attributes', async () => {
    for (const p of ['/', '/runs/ioi-small', '/runs/ioi-small/circuit', '/runs/broken']) {
      const { body } = await raw(v, p);
      expect(body, p).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(body, p).not.toMatch(/\sstyle=/);
      expect(body, p).not.toMatch(/\son[a-z]+=/i);
    }
  });

  it('serves plotly locally as JavaScript', async () => {
    const r = await raw(v, '/vendor/plotly.js', { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/javascript/);
    expect(Number(r.headers['content-length'])).toBeGreaterThan(1_000_000);
  });

  it('is read-only: every method but GET and HEAD gets 405', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const p of ['/', '/api/runs', '/api/runs/ioi-small']) {
        const r = await raw(v, p, { method });
        expect(r.status, `${method} ${p}`).toBe(405);
        expect(r.headers.allow).toBe('GET, HEAD');
      }
    }
    const head = await raw(v, '/api/runs/ioi-small', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('never returns files outside RUNS_DIR, whatever the path encoding', async () => {
    const attempts = [
      '/api/runs/..%2F..%2Fsecret.txt',
      '/api/runs/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd',
      '/api/runs/..%2F..%2Fetc%2Fpasswd',
      '/api/runs/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/api/runs/%2E%2E%2F%2E%2E%2Foutside-run',
      '/api/runs/%252e%252e%252f%252e%252e%252fsecret.txt',
      '/api/runs/..%255c..%255csecret.txt',
      '/api/runs/..%5C..%5Csecret.txt',
      '/api/runs/..\\..\\secret.txt',
      '/api/runs/%2Fetc%2Fpasswd',
      '/api/runs//etc/passwd',
      '/api/runs/../../secret.txt',
      '/api/runs/..',
      '/api/runs/%2e%2e',
      '/api/runs/.',
      '/api/runs/escape',
      '/api/runs/escape/circuit',
      '/api/runs/escape/faithfulness',
      '/api/runs/leak',
      '/api/runs/leak/correlations',
      '/api/runs/ioi-small%2F..%2F..%2Fsecret.txt',
      '/api/runs/%E0%A4%A',
      '/runs/..%2F..%2Fsecret.txt',
      '/runs/escape',
      '/runs/leak',
      '/runs/escape/circuit',
      '/circuit?run=..%2F..%2Fsecret.txt',
      '/static/../../secret.txt',
      '/static/..%2F..%2F..%2F..%2Fsecret.txt',
      '/static/%2e%2e/%2e%2e/server.ts',
      '/static/%2e%2e/server.ts',
      '/static/shared/../../server.ts',
      '/static/..%5Cserver.ts',
      '/static/..%2F..%2F..%2Fbin%2Frelp.js',
      '/static/%2e%2e/%2e%2e/%2e%2e/bin/relp.js',
      '/static/%252e%252e/%252e%252e/%252e%252e/bin/relp.js',
      '/static/shared/..%2F..%2Fsafe-path.ts',
      '/vendor/plotly.js/..%2F..%2Fpackage.json',
      '/vendor/..%2F..%2Fpackage.json',
      '//etc/passwd',
      '/%2e%2e/%2e%2e/secret.txt',
    ];
    for (const p of attempts) {
      const r = await raw(v, p);
      expect(r.status, p).toBeGreaterThanOrEqual(400);
      expect(r.status, p).toBeLessThan(500);
      expect(r.body, p).not.toContain(SECRET);
      expect(r.body, p).not.toMatch(/root:.*:0:0:/);
      expect(r.body, p).not.toContain('RUN_ID_PATTERN');
      expect(r.body, p).not.toContain('"name": "relp"');
      expect(r.body, p).not.toContain('tsx/esm/api');
    }
  });

  it('lists runs without the symlinked escape', async () => {
    const r = await raw(v, '/api/runs');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(r.body) as { runs: { id: string; error: string | null }[] };
    const ids = body.runs.map((x) => x.id);
    expect(ids).toContain('ioi-small');
    expect(ids).not.toContain('escape');
    expect(ids).not.toContain('leak');
    expect(r.body).not.toContain(SECRET);
  });

  it('returns run files as stored, and specific JSON errors for broken ones', async () => {
    const ok = await raw(v, '/api/runs/ioi-small');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual(fx.runs['ioi-small']);
    const broken = await raw(v, '/api/runs/broken');
    expect(broken.status).toBe(422);
    expect(JSON.parse(broken.body)).toEqual({ error: { status: 422, message: expect.stringMatching(/^broken\/run\.json is not valid JSON: it ends early at line \d+, column \d+ \(truncated or partially written\?\)$/) } });
    const bad = JSON.parse((await raw(v, '/api/runs/bad-shape')).body);
    expect(bad.error.message).toBe('bad-shape/run.json: scores.relp.resid_pre.values[1] has 4 entries, expected 5 (shape [2, 5])');
    const missing = await raw(v, '/api/runs/no-such-run');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).error.message).toBe('run no-such-run has no run.json');
    expect((await raw(v, '/api/runs/circuit-only')).status).toBe(404);
    expect((await raw(v, '/api/runs/circuit-only/circuit')).status).toBe(200);
    expect((await raw(v, '/api/runs/circuit-only/faithfulness')).status).toBe(404);
    expect((await raw(v, '/api/nothing-here')).status).toBe(404);
  });

  it('serves circuit, faithfulness (always an array) and correlations', async () => {
    const c = JSON.parse((await raw(v, '/api/runs/gpt2-small/circuit')).body);
    expect(c.links).toHaveLength(32491);
    const f = JSON.parse((await raw(v, '/api/runs/ioi-small/faithfulness')).body);
    expect(Array.isArray(f)).toBe(true);
    const corr = JSON.parse((await raw(v, '/api/runs/ioi-small/correlations')).body);
    expect(corr.reference).toBe('activation');
    expect(corr.methods).toEqual(['atp', 'atp*', 'relp']);
    expect(corr.rows[0].component).toBe('resid_pre');
    expect((await raw(v, '/api/runs/broken/correlations')).status).toBe(422);
  });

  it('keeps serving other runs after a broken one', async () => {
    expect((await raw(v, '/api/runs/broken')).status).toBe(422);
    expect((await raw(v, '/runs/broken')).status).toBe(422);
    expect((await raw(v, '/api/runs/ioi-small')).status).toBe(200);
    expect((await raw(v, '/runs/ioi-small')).status).toBe(200);
  });

  it('renders run errors as their own page, escaped', async () => {
    const broken = await raw(v, '/runs/broken');
    expect(broken.status).toBe(422);
    expect(broken.headers['content-type']).toMatch(/^text\/html/);
    expect(broken.body).toContain('Run broken cannot be shown');
    expect(broken.body).toMatch(/it ends early at line \d+/);
    const xss = await raw(v, '/runs/xss');
    expect(xss.status).toBe(422);
    expect(xss.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(xss.body).not.toContain('<img src=x');
    expect((await raw(v, '/runs/no-such-run')).status).toBe(404);
    expect((await raw(v, '/runs/no-such-run/circuit')).status).toBe(404);
    expect((await raw(v, '/runs/circuit-only')).status).toBe(200);
  });

  it('redirects /circuit?run= to the canonical circuit URL, keeping the view state', async () => {
    const r = await raw(v, '/circuit?run=ioi-small&method=atp&threshold=0.01&pins=a1.h2,m0&evil=1');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('/runs/ioi-small/circuit?method=atp&threshold=0.01&pins=a1.h2%2Cm0');
  });

  it('refuses unexpected Host headers (DNS rebinding)', async () => {
    expect((await raw(v, '/api/runs', { headers: { Host: 'evil.example' } })).status).toBe(421);
    expect((await raw(v, '/api/runs', { headers: { Host: 'evil.example:80' } })).status).toBe(421);
    expect((await raw(v, '/api/runs', { headers: { Host: `localhost:${v.address.port}` } })).status).toBe(200);
    expect((await raw(v, '/api/runs', { headers: { Host: `127.0.0.1:${v.address.port}` } })).status).toBe(200);
  });

  it('gives clear start-up errors', async () => {
    await expect(startViewer({ runsDir: path.join(fx.base, 'missing'), port: 0 })).rejects.toThrow(/runs directory ".*missing" does not exist/);
    await expect(startViewer({ runsDir: fx.runsDir, port: v.address.port })).rejects.toThrow(`port ${v.address.port} on 127.0.0.1 is already in use; pass --port 0 to pick a free port`);
    await expect(startViewer({ runsDir: fx.runsDir, port: 70000 })).rejects.toThrow(/invalid port 70000/);
  });
});
