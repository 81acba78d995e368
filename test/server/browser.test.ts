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

for (const slots of [1, 16]) {
  test(`playground with ${slots} slot${slots === 1 ? '' : 's'}: every slot drawn to scale in its own row, nothing overlapping or past the window`, { skip, timeout: 120_000 }, async () => {
    const s = await startServer({ kvFeedIntervalMs: 50 }, { maxSeqs: slots });
    try {
      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        await page.goto(`${s.url}/`);
        // Subscribed before the requests start, so the sample taken as each starts reaches the page.
        await page.waitForFunction(() => Number(document.body.dataset.kvUpdates ?? 0) > 0);
        const done = Promise.all(Array.from({ length: slots }, (_, i) =>
          postJson(`${s.url}/v1/completions`, { prompt: `Story ${i}: once upon a time`, max_tokens: 40, temperature: 0 })));
        await page.waitForFunction(() => document.querySelectorAll('#slots .slot[data-state="active"] .run').length > 0);
        const layout = await page.evaluate(() => ({
          rows: [...document.querySelectorAll('#slots .slot')].map((r) => {
            const box = r.getBoundingClientRect();
            return { top: box.top, bottom: box.bottom, range: r.querySelector('.range')!.getBoundingClientRect().width };
          }),
          pageWidth: document.documentElement.scrollWidth,
          window: window.innerWidth,
        }));
        assert.equal(layout.rows.length, slots);
        for (let i = 1; i < layout.rows.length; i++) assert.ok(layout.rows[i]!.top >= layout.rows[i - 1]!.bottom - 0.5, `row ${i} starts below row ${i - 1}`);
        for (const r of layout.rows) assert.ok(r.range > 200, `a range is wide enough to read: ${r.range}px`);
        assert.ok(layout.pageWidth <= layout.window, `no horizontal scrolling: ${layout.pageWidth} > ${layout.window}`);
        for (const r of await done) assert.equal(r.status, 200, r.text);
        await screenshot(page, `playground-${slots}-slots.png`);
      });
    } finally {
      await s.close();
    }
  });
}

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
  assert.equal(await page.locator('#slots .slot').count(), 4, 'every slot has a row, used or not');
  assert.equal(await page.locator('#slots .slot[data-state="free"]').count(), 4, 'no slot is in use before the first request');
  assert.equal(await page.locator('#slots .run').count(), 0, 'nothing is mapped yet');

  // A short request is seen while it runs: some update shows its slot active, holding its tokens.
  await page.evaluate(() => {
    const seen = { active: 0 };
    (window as unknown as { seen: typeof seen }).seen = seen;
    new MutationObserver(() => {
      for (const row of document.querySelectorAll('#slots .slot[data-state="active"]')) {
        if (row.querySelector('.run')) seen.active++;
      }
    }).observe(document.getElementById('slots')!, { childList: true });
  });
  const short = await postJson(`${url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 40, temperature: 0 });
  assert.equal(short.status, 200, short.text);
  assert.ok(await page.evaluate(() => (window as unknown as { seen: { active: number } }).seen.active > 0), 'the map showed the short request running');

  await page.fill('#prompt', 'Once upon a time');
  await page.fill('#max-tokens', '200');
  await page.click('#send');
  const reply = page.locator('.msg.assistant').first();
  await reply.waitFor();
  await page.waitForFunction(() => (document.querySelector('.msg.assistant')?.textContent ?? '').length > 40);
  await page.waitForFunction(() => /generated tokens/.test(document.getElementById('speed')?.textContent ?? ''));
  // The story's tokens changed the map where it was empty: a slot still holds them (deferred reclamation),
  // or the prefix cache keeps their pages after the slot gave them up.
  await page.waitForFunction(() => document.querySelectorAll('#slots .run').length > 0 || document.querySelectorAll('#cache-only .block').length > 0);
  assert.ok((await reply.textContent())!.length > 40);

  // Two requests with a long shared start: the second maps the pages the first computed, so both slots
  // draw shared pages at the start of their ranges, alike, and count the same number beside them.
  const prompt = `Once upon a time ${'there was a little girl named Lily. '.repeat(12)}`;
  const post = () =>
    fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 150, temperature: 0 }) });
  const both = Promise.all([post(), post()]);
  const sharing = await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#slots .slot[data-state="active"]')].flatMap((row) => {
      const run = row.querySelector('.run.shared');
      const box = run?.getBoundingClientRect();
      const range = row.querySelector('.range')!.getBoundingClientRect();
      const pages = Number(row.querySelector('.num.shared')?.textContent || 0);
      return run && box!.width > 0 && pages > 0 ? [{ slot: row.getAttribute('data-slot'), left: box!.left - range.left, width: box!.width, pages }] : [];
    });
    return rows.length >= 2 ? rows : null;
  });
  const rows = (await sharing.jsonValue())!;
  assert.ok(rows.length >= 2, JSON.stringify(rows));
  assert.notEqual(rows[0]!.slot, rows[1]!.slot);
  for (const r of rows) assert.ok(r.left < 1, `the shared pages start the range: ${JSON.stringify(r)}`);
  assert.equal(rows[0]!.pages, rows[1]!.pages, 'both slots share the same pages');
  assert.ok(Math.abs(rows[0]!.width - rows[1]!.width) < 1, 'and draw them alike');
  for (const r of await both) assert.equal(r.status, 200);
  // Once both are done, the prefix cache keeps the prompt's blocks, and the second request was a hit.
  await page.waitForFunction(() => document.querySelectorAll('#cache-only .block').length > 0);
  assert.match((await page.locator('#cache-only').textContent())!, /\d+ blocks? no slot maps/);
  assert.match((await page.locator('#tile-hit .tile-value').textContent())!, /^[1-9]\d*%$/);

  await screenshot(page, 'playground.png');
}
