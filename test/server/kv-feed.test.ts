// The KV feed behind the playground's map (/api/kv/stream): a history for the graph, then snapshots with
// the pool, the page geometry and each slot's pages by who holds them. Checked against what the
// requests did: two requests with one long prompt share its pages, and an evicting request's dropped
// rows are the ones its usage reports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sseEvents } from '../../src/loadgen/sse-frames.js';
import type { KvSnapshot, PoolSample } from '../../src/server/kv-feed.js';
import { kvManager, postJson, startServer } from './helpers.js';

/** The feed's events until `until` returns a value (or the stream ends). */
async function watch<T>(url: string, until: (event: string, data: unknown) => T | undefined): Promise<T> {
  const stop = new AbortController();
  const res = await fetch(`${url}/api/kv/stream`, { signal: stop.signal });
  assert.equal(res.status, 200);
  try {
    for await (const e of sseEvents(res.body!)) {
      const found = until(e.event, JSON.parse(e.data));
      if (found !== undefined) return found;
    }
    throw new Error('the feed ended');
  } finally {
    stop.abort();
  }
}

const sum = (xs: readonly number[]) => xs.reduce((n, x) => n + x, 0);

test('the feed opens with the pool\'s history, then two requests sharing a long prompt show its pages shared on both slots', { timeout: 60_000 }, async () => {
  const s = await startServer({ kvFeedIntervalMs: 20 }, { maxSeqs: 2 });
  try {
    const first = await watch(s.url, (event, data) => ({ event, data }));
    assert.equal(first.event, 'history');
    assert.equal((first.data as { intervalMs: number }).intervalMs, 20);

    const prompt = `Once upon a time ${'there was a little girl named Lily. '.repeat(12)}`;
    const both = Promise.all([0, 1].map(() => postJson(`${s.url}/v1/completions`, { prompt, max_tokens: 150, temperature: 0 })));
    let history: PoolSample[] = [];
    const snap = await watch(s.url, (event, data) => {
      if (event === 'history') history = (data as { samples: PoolSample[] }).samples;
      const k = data as KvSnapshot;
      return event === 'kv' && k.slots.filter((x) => x.state === 'active' && x.pageRuns.some((r) => r.shared)).length === 2 ? k : undefined;
    });
    assert.ok(history.length > 0, 'the second subscriber got the samples taken meanwhile');
    for (const p of history) assert.equal(p.running + p.cached + p.idle + p.free, snap.totalPages, 'a sample accounts for every page');
    assert.equal(snap.maxSlots, 2);
    assert.ok(snap.rowsPerPage * snap.rangePages >= snap.maxContext, 'a range spans the whole context');
    const [a, b] = snap.slots;
    for (const slot of [a!, b!]) {
      assert.equal(sum(slot.pageRuns.map((r) => r.pages)) * snap.ranges, slot.pages, 'the runs cover every mapped page');
      assert.equal(slot.pageRuns[0]!.shared, true, 'the shared pages are the prompt\'s first');
      assert.ok(slot.tokens > slot.pageRuns[0]!.pages * snap.rowsPerPage, 'past the shared pages each has tokens of its own');
    }
    // Sharing is mutual: the same number of page indices on both, every range of them shared.
    assert.equal(a!.pageRuns[0]!.pages, b!.pageRuns[0]!.pages);
    assert.equal(a!.sharedPages, a!.pageRuns[0]!.pages * snap.ranges);
    assert.equal(b!.sharedPages, a!.sharedPages);
    // A page is shared because both map it: the pool counts it once.
    assert.equal(snap.sharedPages, a!.pageRuns[0]!.pages * snap.ranges);
    assert.equal(snap.kvType.k, 'f16');
    for (const r of await both) assert.equal(r.status, 200, r.text);
    // The second request found the first one's blocks: the hit rate says so.
    const after = (await (await fetch(`${s.url}/api/kv`)).json()) as KvSnapshot;
    assert.ok(after.prefixCache!.hitTokens >= a!.pageRuns[0]!.pages * snap.rowsPerPage, JSON.stringify(after.prefixCache));
  } finally {
    await s.close();
  }
});

test('an evicting request\'s slot reports the rows it dropped, and they add up to its usage', { timeout: 60_000 }, async () => {
  const s = await startServer({ kvFeedIntervalMs: 20 }, { maxSeqs: 1, prefixCache: false });
  try {
    const request = postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 200, temperature: 0, kv_policy: 'sinks', kv_budget: 48 });
    const seen = await watch(s.url, (event, data) => {
      const slot = event === 'kv' ? (data as KvSnapshot).slots.find((x) => x.evictedRows > 0) : undefined;
      return slot && { slot, budget: 48 };
    });
    assert.ok(seen.slot.compactions > 0);
    assert.ok(seen.slot.tokens <= seen.budget, `the slot stays within its budget: ${seen.slot.tokens}`);
    const res = await request;
    assert.equal(res.status, 200, res.text);
    const evicted = res.json.usage.kv_eviction.evicted_tokens as number;
    assert.ok(seen.slot.evictedRows <= evicted, `${seen.slot.evictedRows} rows seen dropped, ${evicted} in all`);
    const after = (await (await fetch(`${s.url}/api/kv`)).json()) as KvSnapshot;
    assert.equal(after.eviction!.evictedTokens, evicted, 'the only request evicted them all');
    assert.deepEqual(after.slots.filter((x) => x.state === 'active'), [], 'its slot was given back');
  } finally {
    await s.close();
  }
});

test(`the feed names the manager's geometry (${kvManager})`, { timeout: 60_000 }, async () => {
  const s = await startServer({}, { maxSeqs: 3, maxContext: 256 });
  try {
    const snap = (await (await fetch(`${s.url}/api/kv`)).json()) as KvSnapshot;
    assert.equal(snap.kind, kvManager);
    assert.equal(snap.maxSlots, 3);
    assert.equal(snap.maxContext, 256);
    // The range is whole pages, and no more than one page past the context.
    assert.ok(snap.rangePages * snap.rowsPerPage >= 256 && (snap.rangePages - 1) * snap.rowsPerPage < 256, JSON.stringify(snap));
    // A page holds as many whole rows of one (layer, K/V) as fit.
    const rowBytes = snap.bytesPerToken / snap.ranges;
    assert.ok(snap.rowsPerPage * rowBytes <= snap.pageBytes && (snap.rowsPerPage + 1) * rowBytes > snap.pageBytes, JSON.stringify(snap));
  } finally {
    await s.close();
  }
});

test('a request that starts running is sampled at once: one far shorter than the interval still shows up', { timeout: 60_000 }, async () => {
  // With a one-minute interval, only the sample taken when the request starts can show it.
  const s = await startServer({ kvFeedIntervalMs: 60_000 }, { maxSeqs: 2 });
  const stop = new AbortController();
  try {
    const res = await fetch(`${s.url}/api/kv/stream`, { signal: stop.signal });
    let request: Promise<{ status: number; text: string }> | undefined;
    let active: KvSnapshot['slots'][number] | undefined;
    try {
      for await (const e of sseEvents(res.body!)) {
        if (e.event !== 'kv') continue;
        const snap = JSON.parse(e.data) as KvSnapshot;
        active = snap.slots.find((x) => x.state === 'active' && x.tokens > 0);
        if (active) break;
        // The subscription's own first sample, before anything runs: now send the request, and give
        // up on the feed a moment after it has been answered. The sample is asked for once the first
        // token is out and taken between two steps; 64 tokens (tens of milliseconds on this model, still
        // far shorter than the interval) keep the request running that long on a loaded machine too,
        // where 8 tokens were once all done first.
        request ??= postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 64, temperature: 0 }).finally(() => setTimeout(() => stop.abort(), 1000));
      }
    } catch (e) {
      if (!stop.signal.aborted) throw e;
    }
    assert.ok(request, 'the feed sent its first sample');
    assert.equal((await request).status, 200);
    assert.ok(active, 'a sample showed the request running');
    assert.ok(active.pages > 0, 'with its pages mapped');
  } finally {
    stop.abort();
    await s.close();
  }
});
