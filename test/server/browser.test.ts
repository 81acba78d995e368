// The web playground in Debian's chromium, driven by playwright-core: send a message, watch tokens
// arrive and the KV map change, see two requests with a shared start share pages (and the prefix cache
// keep them afterwards); start a new chat, stop an answer, see errors as sentences; and save screenshots
// to test-artifacts/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../paths.js';
import { eventually, postJson, startServer } from './helpers.js';

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

/** Waits until the page is no longer answering: Send enabled again. */
async function answered(page: Page): Promise<void> {
  await page.waitForFunction(() => !(document.getElementById('send') as HTMLButtonElement).disabled);
}

async function screenshot(page: Page, name: string): Promise<void> {
  const dir = join(repoRoot, 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, name), fullPage: true });
}

test('playground: answers begin without a space, New chat forgets the conversation, Stop ends an answer and frees its request', { skip, timeout: 120_000 }, async () => {
  const s = await startServer({ kvFeedIntervalMs: 50 }, { maxSeqs: 2 });
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      const sent: { messages: { role: string; content: string }[] }[] = [];
      page.on('request', (r) => {
        if (r.url().endsWith('/v1/chat/completions')) sent.push(r.postDataJSON());
      });
      await page.goto(`${s.url}/`);
      assert.equal(await page.locator('#stop').isDisabled(), true, 'Stop is off while nothing is being answered');

      // The same request straight to the API: its answer begins with the tokenizer's word space, which
      // the page leaves out and otherwise shows as it is.
      const ask = 'Once upon a time';
      const direct = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: ask }], max_tokens: 24, temperature: 0, kv_policy: 'sinks' });
      assert.equal(direct.status, 200, direct.text);
      const raw: string = direct.json.choices[0].message.content;
      assert.match(raw, /^\s/, 'the model\'s answer begins with a space (else this check proves nothing)');
      await page.fill('#max-tokens', '24');
      await page.fill('#temperature', '0');
      await page.fill('#prompt', ask);
      await page.click('#send');
      await answered(page);
      assert.equal(await page.locator('.msg.assistant').textContent(), raw.trimStart());

      await page.fill('#prompt', 'And then?');
      await page.click('#send');
      await answered(page);
      assert.equal(sent.at(-1)!.messages.length, 3, 'the second turn carries the first');
      await page.click('#new-chat');
      assert.equal(await page.locator('#messages > *').count(), 0, 'New chat empties the log');
      assert.equal(await page.locator('#speed').textContent(), '');

      // A long answer (the server evicts to keep going), stopped part way.
      await page.fill('#max-tokens', '100000');
      await page.fill('#temperature', '0.8');
      await page.fill('#prompt', 'Tell me a very long story.');
      await page.click('#send');
      assert.equal(sent.at(-1)!.messages.length, 1, 'after New chat the conversation starts again');
      await page.waitForFunction(() => (document.querySelector('.msg.assistant')?.textContent ?? '').length > 40);
      assert.equal(await page.locator('#send').isDisabled(), true, 'Send is off while answering');
      assert.equal(await page.locator('#stop').isDisabled(), false, 'Stop is on while answering');
      await page.click('#stop');
      await answered(page);
      assert.equal(await page.locator('#stop').isDisabled(), true);
      const reply = page.locator('.msg.assistant');
      assert.match((await reply.getAttribute('class'))!, /\bstopped\b/, 'the partial answer is marked as stopped');
      const partial = await reply.textContent();
      assert.ok(partial!.length > 40, 'the partial answer stays');
      await eventually(async () => (await (await fetch(`${s.url}/api/kv`)).json()).running === 0, 'the stopped request to be freed');
      assert.equal(await reply.textContent(), partial, 'nothing arrives after Stop');
      assert.equal(await page.locator('.msg.error').count(), 0);
      await screenshot(page, 'playground-stopped.png');

      // The stopped answer is part of the conversation that goes on.
      await page.fill('#max-tokens', '8');
      await page.fill('#prompt', 'The end.');
      await page.click('#send');
      await answered(page);
      assert.deepEqual(sent.at(-1)!.messages.map((m) => m.role), ['user', 'assistant', 'user']);
      assert.equal(sent.at(-1)!.messages[1]!.content, partial);
    });
  } finally {
    await s.close();
  }
});

test('playground: errors are sentences, from the server\'s message or for a server that cannot be reached', { skip, timeout: 120_000 }, async () => {
  const s = await startServer({ kvFeedIntervalMs: 50, apiKey: 'sk-play' }, { maxSeqs: 2 });
  let closed = false;
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      await page.goto(`${s.url}/`);
      await page.locator('#api-key').waitFor({ state: 'visible' });
      await page.fill('#api-key', 'sk-wrong');
      await page.fill('#prompt', 'Hello');
      await page.click('#send');
      await page.locator('.msg.error').waitFor();
      await answered(page);
      // What the server says about it, as the page should show it.
      const refused = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Hello' }] }, { authorization: 'Bearer sk-wrong' });
      assert.equal(refused.status, 401);
      const message: string = refused.json.error.message;
      const shown = (await page.locator('.msg.error').textContent())!;
      assert.match(shown, /^[A-Z].*\.$/s, `a sentence: ${shown}`);
      assert.equal(shown.toLowerCase().replace(/\.$/, ''), message.toLowerCase().replace(/\.$/, ''));
      assert.equal(await page.locator('.msg.assistant').count(), 0, 'no empty answer is left behind');
      assert.equal(await page.inputValue('#prompt'), 'Hello', 'the refused text is back in the box, to send again');
      await screenshot(page, 'playground-error.png');

      await s.close();
      closed = true;
      await page.fill('#api-key', 'sk-play');
      await page.click('#send');
      await page.waitForFunction(() => document.querySelectorAll('.msg.error').length === 2);
      await answered(page);
      assert.equal(await page.locator('.msg.error').nth(1).textContent(), 'The server could not be reached.');
      for (const text of await page.locator('.msg').allTextContents()) assert.doesNotMatch(text, /[{}]|\[object/, text);
    });
  } finally {
    if (!closed) await s.close();
  }
});

test('playground on a server that cannot evict: the oldest turns are left out, and the page says so', { skip, timeout: 120_000 }, async () => {
  const s = await startServer({ kvFeedIntervalMs: 50 }, { maxSeqs: 2, maxContext: 128, kvType: { k: 'kivi4c', v: 'kivi4t' }, kvResidual: 32 });
  try {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      const sent: { messages: unknown[]; kv_policy?: string }[] = [];
      page.on('request', (r) => {
        if (r.url().endsWith('/v1/chat/completions')) sent.push(r.postDataJSON());
      });
      await page.goto(`${s.url}/`);
      await page.fill('#max-tokens', '40');
      for (let turn = 1; turn <= 4; turn++) {
        await page.fill('#prompt', `Turn ${turn}: tell me a long story about a little girl, her dog and her big red ball in the park.`);
        await page.click('#send');
        await answered(page);
        assert.equal(await page.locator('.msg.error').count(), 0, `turn ${turn}: ${(await page.locator('.msg.error').allTextContents()).join('; ')}`);
      }
      assert.equal(sent.at(-1)!.kv_policy, undefined, 'the server refused kv_policy, so the page stopped sending it');
      assert.ok(sent.at(-1)!.messages.length < 7, `the last request left turns out: ${sent.at(-1)!.messages.length} messages`);
      assert.ok((await page.locator('.note').count()) > 0);
      assert.match((await page.locator('.note').first().textContent())!, /left out/);
      assert.equal(await page.locator('.msg.user').count(), 4, 'the log still shows every turn');
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

  await screenshot(page, 'playground.png');
}
