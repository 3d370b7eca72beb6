/**
 * HTTP hardening for the viewer: a strict Content-Security-Policy and friends, GET/HEAD only,
 * and a Host-header allow-list (blocks DNS-rebinding pages from reading a loopback viewer).
 *
 * CSP and plotly.js (checked against plotly.js-dist 3.7 in headless Chromium):
 * - `script-src 'self'` without 'unsafe-eval' works for `heatmap` and SVG `scatter`.
 *   `scattergl` (and the other regl traces: splom, parcoords, scatterpolargl) compile shaders with
 *   `Function.apply` and then silently show "WebGL is not supported", so the viewer never uses them.
 * - plotly injects `<style>` elements (its modebar/hover rules, and maplibre's CSS at load), so the
 *   page that loads plotly (the run page) needs `style-src 'self' 'unsafe-inline'`. Every other page
 *   gets `style-src 'self'`.
 * - heatmaps are drawn to a canvas and embedded as `data:` images, and plot downloads use `blob:`,
 *   hence `img-src 'self' data: blob:`.
 */
import type { NextFunction, Request, Response } from 'express';

/** The CSP of pages that do not load plotly. */
export const STRICT_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The CSP of the run page, which loads plotly (see the module comment for why styles differ). */
export const PLOTLY_CSP = STRICT_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

/** Set the security headers on every response (pages may loosen the CSP to {@link PLOTLY_CSP}). */
export function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Content-Security-Policy', STRICT_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
  next();
}

/** Answer 405 (with `Allow: GET, HEAD`) to every method but GET and HEAD: the viewer is read-only. */
export function readOnly(req: Request, res: Response, next: NextFunction): void {
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  res.setHeader('Allow', 'GET, HEAD');
  res.status(405).type('text/plain').send(`405 Method Not Allowed: the viewer is read-only (GET and HEAD only)\n`);
}

/** Host names a loopback viewer answers to. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]', '::1'];

/** The host name of a Host header, without the port (`[::1]:80` -> `[::1]`). */
export function hostName(header: string | undefined): string {
  if (!header) return '';
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

/**
 * Refuse requests whose Host header is not in `allowed` (421). `null` allows any host (for a
 * viewer deliberately bound to a public interface).
 */
export function hostAllowList(allowed: readonly string[] | null) {
  const set = allowed ? new Set(allowed.map((h) => h.toLowerCase())) : null;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!set || set.has(hostName(req.headers.host))) return next();
    res.status(421).type('text/plain').send('421 Misdirected Request: unexpected Host header\n');
  };
}
