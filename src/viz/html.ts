/**
 * Server-rendered page shells. They carry no inline script or style: data reaches the client
 * modules through `data-*` attributes on <body>, and every interpolated string is HTML-escaped.
 */

/** Escape text for HTML element content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Options of {@link pageShell}. */
export interface ShellOptions {
  title: string;
  /** `data-*` attributes of <body> (keys without the `data-` prefix). */
  data?: Record<string, string>;
  /** Classic scripts loaded with `defer` before the modules (e.g. plotly). */
  scripts?: string[];
  /** ES module entry points. */
  modules?: string[];
  /** Body HTML; the caller must have escaped any data in it. */
  bodyHtml: string;
}

/** A complete HTML document. */
export function pageShell(o: ShellOptions): string {
  const data = Object.entries(o.data ?? {})
    .map(([k, v]) => ` data-${k.replace(/[^a-z0-9-]/g, '')}="${escapeHtml(v)}"`)
    .join('');
  const scripts = (o.scripts ?? []).map((s) => `<script defer src="${escapeHtml(s)}"></script>`).join('\n');
  const modules = (o.modules ?? []).map((s) => `<script type="module" src="${escapeHtml(s)}"></script>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(o.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/shared/style.css">
${scripts}
${modules}
</head>
<body${data}>
${o.bodyHtml}
</body>
</html>
`;
}

/** A page for an error: the status, a title and the specific message, with a link back to the index. */
export function errorPage(status: number, title: string, message: string, links: { href: string; text: string }[] = []): string {
  const more = links.map((l) => ` · <a href="${escapeHtml(l.href)}">${escapeHtml(l.text)}</a>`).join('');
  return pageShell({
    title: `${status} ${title}`,
    data: { status: String(status) },
    bodyHtml: `<header class="topbar"><a href="/">relp viewer</a></header>
<main class="page">
<div class="error-box" role="alert" id="error">
<h1>${escapeHtml(title)}</h1>
<p class="error-message">${escapeHtml(message)}</p>
<p class="error-status">HTTP ${status}</p>
</div>
<p><a href="/">All runs</a>${more}</p>
</main>`,
  });
}
