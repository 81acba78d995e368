// The playground's files as the server hands them out: the pages, and a favicon that browsers ask for
// on their own, which must be answered rather than counted as a failed request.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { WEB_DIR } from '../../src/server/static-ui.js';
import { startServer } from './helpers.js';

/** Sum of vserve:request_failure_total over every reason. */
async function failures(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^vserve:request_failure_total\{[^}]*\} (\d+)$/gm)) sum += Number(m[1]);
  return sum;
}

test('the favicon is served as SVG at /favicon.ico and /favicon.svg, and is not a failed request', { timeout: 60_000 }, async () => {
  const s = await startServer();
  try {
    const svg = readFileSync(join(WEB_DIR, 'favicon.svg'));
    assert.match(svg.toString(), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    // The counter does see a missing file: the favicon's answer below is not quiet by accident.
    const before = await failures(s.url);
    assert.equal((await fetch(`${s.url}/no-such-icon.ico`)).status, 404);
    assert.equal(await failures(s.url), before + 1);

    for (const path of ['/favicon.ico', '/favicon.svg']) {
      const res = await fetch(`${s.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'image/svg+xml', path);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), svg, path);
    }
    assert.equal(await failures(s.url), before + 1, 'the favicon requests added no failure');

    const page = await (await fetch(`${s.url}/`)).text();
    assert.match(page, /<link rel="icon" href="\/favicon\.svg" type="image\/svg\+xml">/);
  } finally {
    await s.close();
  }
});
