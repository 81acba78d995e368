// The web playground: the plain files of web/ (no build step), read once at startup and served from memory.
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** web/ at the repository root (this file runs from dist/src/server/). */
export const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

export interface StaticFile {
  body: Buffer;
  type: string;
}

/** URL path ("/", "/app.js") -> file. */
export function loadStaticFiles(dir = WEB_DIR): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const file = { body: readFileSync(join(dir, name)), type };
    files.set(`/${name}`, file);
    if (name === 'index.html') files.set('/', file);
    // Browsers ask for /favicon.ico whatever the page links; answering it with the SVG icon (which they
    // read by its content type) keeps that request from being a 404 counted as a failed request.
    if (name === 'favicon.svg') files.set('/favicon.ico', file);
  }
  return files;
}
