// GET /v1/kv/events: the hello names the keys cached now and how they are built; later events report the
// blocks each request stored (the keys are checked against the chain computed here from the request's
// token ids) and the blocks the pool evicted, so that a subscriber's copy always equals a fresh hello.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BlockHasher, BLOCK_LAYOUT_VERSION } from '../../src/kv/block-hash.js';
import { sseEvents } from '../../src/loadgen/sse-frames.js';
import { modelFingerprint } from '../../src/model/fingerprint.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { bundledModel } from '../paths.js';
import { eventually, postJson, startServer, type TestServer } from './helpers.js';

const BLOCK = 16;
/** f16 K and V of the bundled model's 5 layers x 4 heads x 8 dims: 640 bytes a token. */
const PAGE_BYTES = BLOCK * 640;

interface Hello { fingerprint: string; blockTokens: number; layoutVersion: string; keys: string[] }

/** A subscriber: the hello, every later event, and its copy of the cached set. */
class Subscriber {
  hello: Hello | undefined;
  readonly events: { stored: string[]; removed: string[] }[] = [];
  readonly mirror = new Set<string>();
  private readonly abort = new AbortController();

  static async open(url: string): Promise<Subscriber> {
    const s = new Subscriber();
    const res = await fetch(`${url}/v1/kv/events`, { signal: s.abort.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    void s.read(res.body!);
    await eventually(async () => s.hello !== undefined, 'the hello event');
    return s;
  }

  private async read(body: ReadableStream): Promise<void> {
    try {
      for await (const e of sseEvents(body)) {
        const data = JSON.parse(e.data);
        if (e.event === 'hello') {
          this.hello = data;
          for (const k of data.keys) this.mirror.add(k);
        } else if (e.event === 'blocks') {
          this.events.push(data);
          for (const k of data.removed) this.mirror.delete(k);
          for (const k of data.stored) this.mirror.add(k);
        }
      }
    } catch {
      // closed by the test
    }
  }

  close(): void {
    this.abort.abort();
  }
}

/** Token ids 3..511 from a seeded generator (no tokenizer between the test and the keys). */
function tokenIds(seed: number, n: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return 3 + (x % 509);
  });
}

let s: TestServer;
before(async () => {
  // 40 pages: two 400-token prompts cannot both stay cached beside a third.
  s = await startServer({}, { kvManager: 'paged', blockSize: BLOCK, kvMemory: 40 * PAGE_BYTES, maxSeqs: 2 });
});
after(() => s.close());

const complete = async (prompt: number[]) => {
  const r = await postJson(`${s.url}/v1/completions`, { prompt, max_tokens: 1, temperature: 0 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.prompt_tokens, prompt.length);
};

test('the stream reports the blocks a request stored, and the pool evicted, as the chain computes them', async () => {
  const first = await Subscriber.open(s.url);
  const file = GGUFFile.open(bundledModel);
  const model = modelFingerprint(file);
  file.close();
  const hello = first.hello!;
  assert.equal(hello.blockTokens, BLOCK);
  assert.equal(hello.layoutVersion, BLOCK_LAYOUT_VERSION);
  assert.ok(hello.fingerprint.startsWith(`${model}/`), `${hello.fingerprint} names the model file (${model})`);
  assert.deepEqual(hello.keys, []);
  const hasher = new BlockHasher(hello.fingerprint, hello.blockTokens);

  // A 100-token prompt computes 6 full blocks; they are stored together, in one event.
  const a = tokenIds(1, 100);
  const chainA = hasher.chain(a);
  assert.equal(chainA.length, 6);
  await complete(a);
  await eventually(async () => first.mirror.size === 6, 'the stored blocks of the first request');
  assert.deepEqual([...first.events[0]!.stored].sort(), [...chainA].sort(), 'one event holds every block the prefill stored');
  assert.deepEqual(first.mirror, new Set(chainA));

  // A late subscriber's hello holds them already.
  const late = await Subscriber.open(s.url);
  assert.deepEqual(new Set(late.hello!.keys), new Set(chainA));
  late.close();

  // Two 400-token prompts (25 blocks each) do not fit beside the first in 40 pages: the oldest blocks go.
  const b = tokenIds(2, 400);
  const c = tokenIds(3, 400);
  await complete(b);
  await complete(c);
  const chainC = hasher.chain(c);
  await eventually(async () => chainC.every((k) => first.mirror.has(k)), 'the blocks of the third request');
  const removed = new Set(first.events.flatMap((e) => e.removed));
  for (const k of chainA) assert.ok(removed.has(k), 'the least recently used blocks were evicted and reported');
  assert.ok(!chainA.some((k) => first.mirror.has(k)));

  // The subscriber's copy, built from events, is exactly what a fresh hello says is cached.
  const check = await Subscriber.open(s.url);
  assert.deepEqual(new Set(check.hello!.keys), first.mirror);
  assert.ok(first.mirror.size <= 40, `${first.mirror.size} blocks cached in a 40-page pool`);
  check.close();
  first.close();
});

test('a server without a prefix cache answers 404 with its reason', async () => {
  const off = await startServer({}, { prefixCache: false, maxSeqs: 1 });
  try {
    const res = await fetch(`${off.url}/v1/kv/events`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'prefix_cache_off');
    assert.match(body.error.message, /without a prefix cache \(--no-prefix-cache\)/);
  } finally {
    await off.close();
  }
});

test('with --api-key the stream needs the key', async () => {
  const keyed = await startServer({ apiKey: 'sekret' }, { maxSeqs: 1 });
  try {
    assert.equal((await fetch(`${keyed.url}/v1/kv/events`)).status, 401);
    const ok = await fetch(`${keyed.url}/v1/kv/events`, { headers: { authorization: 'Bearer sekret' } });
    assert.equal(ok.status, 200);
    await ok.body!.cancel();
  } finally {
    await keyed.close();
  }
});
