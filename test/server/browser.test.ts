// The web playground in Debian's chromium, driven by playwright-core: send a message, watch tokens
// arrive and the KV map change, and save a screenshot to test-artifacts/.
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
  // A slot has held the story's tokens: the map now shows it (with its pages) where it was empty.
  const seen = await page.waitForFunction(() => {
    const map = JSON.parse(document.getElementById('slots')!.dataset.map ?? '[]') as { tokens: number; pages: number }[];
    return map.some((x) => x.pages > 0) ? map : null;
  });
  const mapAfter = (await seen.jsonValue())!;
  assert.ok(mapAfter.some((x) => x.pages > 0), JSON.stringify(mapAfter));
  assert.ok((await reply.textContent())!.length > 40);
  assert.ok(await page.locator('#slots tbody tr').count() > 0);

  const dir = join(repoRoot, 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'playground.png'), fullPage: true });
}
