/**
 * Headless Chromium (Debian's /usr/bin/chromium) through playwright-core, with the flags that keep
 * it offline and quiet, and a page wrapper that records console errors, page errors and CSP
 * violations.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/** Launch the system Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** Where screenshots go (gitignored). */
export const ARTIFACTS = path.resolve('test/artifacts/viz');

/** Path of a screenshot, creating the folder. */
export function artifact(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

/** A page with its collected problems. */
export interface WatchedPage {
  page: Page;
  /** console.error messages and uncaught page errors. */
  errors: string[];
  /** CSP violations reported in the page (`violatedDirective blockedURI`). */
  csp(): Promise<string[]>;
}

/** Open a page (fresh context, downloads accepted) that records errors and CSP violations. */
export async function watchedPage(browser: Browser, viewport = { width: 1400, height: 900 }): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return { page, errors, csp: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp) };
}
