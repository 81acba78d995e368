// The web playground in Debian's chromium, driven by playwright-core: send a message, watch tokens
// arrive and the KV map change, see two requests with a shared start share pages (and the prefix cache
// keep them afterwards), and save a screenshot to test-artifacts/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { repoRoot } from '../paths.js';
import { startServer } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
// In CI the browser must be there (.ci/run installs it); elsewhere its absence only skips this test.
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `${CHROMIUM} is not installed (apt-get install chromium)` : false;

/** Runs `fn` with a headless chromium on a fresh profile. */
async function withBrowser(fn: (browser: BrowserContext) => Promise<void>): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), 'vserve-chromium-'));
  try {
    // A persistent context is how playwright takes a user-data-dir: a fresh one, removed afterwards.
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      await fn(browser);
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

test('playground: a message streams back and the KV memory map changes', { skip, timeout: 120_000 }, async () => {
  const s = await startServer({ kvFeedIntervalMs: 50 }, { maxSeqs: 4 });
  try {
    await withBrowser((browser) => drive(browser, s.url));
  } finally {
    await s.close();
  }
});

test('playground with --api-key: it asks for the key, then the KV feed and the chat use it', { skip, timeout: 120_000 }, async () => {
  const s = await startServer({ kvFeedIntervalMs: 50, apiKey: 'sk-play' }, { maxSeqs: 4 });
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      await page.goto(`${s.url}/`);
      await page.locator('#api-key').waitFor({ state: 'visible' });
      assert.equal(await page.evaluate(() => document.body.dataset.kvUpdates), undefined, 'no KV update without the key');
      await page.fill('#api-key', 'sk-play');
      await page.dispatchEvent('#api-key', 'change');
      await page.waitForFunction(() => Number(document.body.dataset.kvUpdates ?? 0) > 0);
      await page.fill('#prompt', 'Once upon a time');
      await page.click('#send');
      await page.waitForFunction(() => (document.querySelector('.msg.assistant')?.textContent ?? '').length > 20);
    });
  } finally {
    await s.close();
  }
});

test('playground: a conversation longer than the context keeps going, the server evicting its oldest tokens', { skip, timeout: 120_000 }, async () => {
  const s = await startServer({ kvFeedIntervalMs: 50 }, { maxSeqs: 2, maxContext: 128 });
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      await page.goto(`${s.url}/`);
      await page.fill('#max-tokens', '40');
      for (let turn = 1; turn <= 5; turn++) {
        await page.fill('#prompt', `Turn ${turn}: tell me a long story about a little girl, her dog and her big red ball in the park.`);
        await page.click('#send');
        await page.waitForFunction((n) => (document.querySelectorAll('.msg.assistant').length === n || document.querySelector('.msg.error')) && !(document.getElementById('send') as HTMLButtonElement).disabled, turn);
        assert.equal(await page.locator('.msg.error').count(), 0, `turn ${turn}: ${(await page.locator('.msg.error').allTextContents()).join('; ')}`);
      }
      assert.equal(await page.locator('.msg.user').count(), 5);
      assert.match(await page.locator('#speed').textContent() ?? '', /oldest tokens evicted to fit the context/);
    });
  } finally {
    await s.close();
  }
});

async function drive(browser: BrowserContext, url: string): Promise<void> {
  const page = await browser.newPage();
  await page.goto(`${url}/`);
  await page.waitForFunction(() => Number(document.body.dataset.kvUpdates ?? 0) > 0);
  const mapBefore = await page.locator('#slots').getAttribute('data-map');
  assert.equal(mapBefore, '[]', 'no slot is in use before the first request');

  await page.fill('#prompt', 'Once upon a time');
  await page.fill('#max-tokens', '200');
  await page.click('#send');
  const reply = page.locator('.msg.assistant').first();
  await reply.waitFor();
  await page.waitForFunction(() => (document.querySelector('.msg.assistant')?.textContent ?? '').length > 40);
  await page.waitForFunction(() => /generated tokens/.test(document.getElementById('speed')?.textContent ?? ''));
  // The story's tokens changed the map where it was empty: a slot still holds them (deferred reclamation),
  // or the prefix cache keeps their pages after the slot gave them up.
  const seen = await page.waitForFunction(() => {
    const map = JSON.parse(document.getElementById('slots')!.dataset.map ?? '[]') as { tokens: number; pages: number }[];
    const pool = JSON.parse(document.getElementById('pool-bar')!.dataset.pages ?? '{}') as { cached?: number };
    return map.some((x) => x.pages > 0) || (pool.cached ?? 0) > 0 ? { map, cached: pool.cached ?? 0 } : null;
  });
  const after = (await seen.jsonValue())!;
  assert.ok(after.map.some((x) => x.pages > 0) || after.cached > 0, JSON.stringify(after));
  assert.ok((await reply.textContent())!.length > 40);

  // Two requests with a long shared start: the second maps the pages the first computed, so both slots
  // show shared pages; once both are done, the prefix cache still holds them.
  const prompt = `Once upon a time ${'there was a little girl named Lily. '.repeat(12)}`;
  const post = () =>
    fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 150, temperature: 0 }) });
  const both = Promise.all([post(), post()]);
  const sharing = await page.waitForFunction(() => {
    const map = JSON.parse(document.getElementById('slots')!.dataset.map ?? '[]') as { state: string; sharedPages: number }[];
    return map.filter((x) => x.state === 'active' && x.sharedPages > 0).length >= 2 ? map : null;
  });
  assert.ok((await sharing.jsonValue())!.length >= 2);
  for (const r of await both) assert.equal(r.status, 200);
  await page.waitForFunction(() => JSON.parse(document.getElementById('pool-bar')!.dataset.pages ?? '{}').cached > 0);
  assert.match((await page.locator('#pool-figures').textContent())!, /prefix cache: \d+ blocks/);

  const dir = join(repoRoot, 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'playground.png'), fullPage: true });
}
