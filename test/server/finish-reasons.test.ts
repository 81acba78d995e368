// Both ways a completion stops early, under concurrency and with aborts in the mix: the EOS path (a
// copy of the bundled model whose EOS id is the first token of "Lily", so its known greedy text ends
// there) and the stop-string path (the bundled model with stop "Lily"). The truth is the bundled
// model's known greedy text; every request that is not aborted must get exactly its prefix.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { sseData } from '../../src/loadgen/sse-frames.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';
import { MODEL, eventually, kvManager, postJson, startServer, startWith, tokenizer, type TestServer } from './helpers.js';

const BEFORE_LILY = STORIES_GREEDY.slice(0, STORIES_GREEDY.indexOf(' Lily'));

/** The bundled model with tokenizer.ggml.eos_token_id set to `id`. */
function withEos(id: number, dir: string): string {
  const bytes = new Uint8Array(readFileSync(bundledModel));
  const key = Buffer.from('tokenizer.ggml.eos_token_id');
  const at = Buffer.from(bytes).indexOf(key) + key.length;
  // The value type (u32 = 4) then the value.
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(at, true), 4);
  view.setUint32(at + 4, id, true);
  const path = join(dir, 'eos-lily.gguf');
  writeFileSync(path, bytes);
  return path;
}

let dir: string;
let eos: { engine: Engine; url: string; close: () => Promise<void> };
let plain: TestServer;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vserve-eos-'));
  const lily = tokenizer.encode('Lily')[0]!;
  const engine = await Engine.load(withEos(lily, dir), { backend: 'reference', kvManager, maxContext: 512, maxSeqs: 4 });
  eos = { engine, ...(await startWith(engine)) };
  plain = await startServer();
});
after(async () => {
  await eos.close();
  await eos.engine.close();
  await plain.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  text: string;
  finish: string | null;
  completionTokens?: number;
  aborted: boolean;
}

/** One completion, whole or streamed; `abortAfterChunks` > 0 aborts a stream after that many chunks. */
async function complete(url: string, body: object, stream: boolean, abortAfterChunks = 0): Promise<Outcome> {
  const payload = { model: MODEL, prompt: 'Once upon a time', max_tokens: 100, temperature: 0, ...body, stream };
  if (!stream) {
    const r = await postJson(`${url}/v1/completions`, payload);
    assert.equal(r.status, 200, r.text);
    return { text: r.json.choices[0].text, finish: r.json.choices[0].finish_reason, completionTokens: r.json.usage.completion_tokens, aborted: false };
  }
  const controller = new AbortController();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...payload, stream_options: { include_usage: true } }), signal: controller.signal,
  });
  const out: Outcome = { text: '', finish: null, aborted: false };
  let chunks = 0;
  try {
    for await (const data of sseData(res.body!)) {
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data);
      if (chunk.usage) out.completionTokens = chunk.usage.completion_tokens;
      if (!chunk.choices?.length) continue;
      out.text += chunk.choices[0].text;
      out.finish = chunk.choices[0].finish_reason ?? out.finish;
      if (abortAfterChunks > 0 && ++chunks === abortAfterChunks) {
        out.aborted = true;
        controller.abort();
        // Leaving the loop cancels the body: an abort that lands while the body is being read can
        // leave the iteration waiting on a stream that neither ends nor errors.
        break;
      }
    }
  } catch (e) {
    if (!out.aborted) throw e;
  }
  return out;
}

/** 12 requests at once, whole and streamed, every third stream aborted after two chunks. */
async function concurrentMix(url: string, body: object): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: 12 }, (_, i) => complete(url, body, i % 2 === 1, i % 6 === 1 ? 2 : 0)));
}

async function assertEngineIdle(engine: Engine): Promise<void> {
  await eventually(async () => {
    const st = await engine.stats();
    return st.running === 0 && st.waiting === 0 && st.kv.activeSlots === 0;
  }, 'every request to leave the engine');
}

test('EOS: generation ends at the EOS token with finish_reason "stop" and no EOS text, whole and streamed, under concurrency and aborts', async () => {
  const outcomes = await concurrentMix(eos.url, {});
  const finished = outcomes.filter((o) => !o.aborted);
  assert.equal(finished.length, 10);
  const expectedTokens = tokenizer.encode(BEFORE_LILY).length;
  for (const o of finished) {
    assert.equal(o.text, BEFORE_LILY);
    assert.equal(o.finish, 'stop');
    // The tokens before EOS; the EOS itself is not a completion token.
    assert.ok(Math.abs(o.completionTokens! - expectedTokens) <= 1, `${o.completionTokens} vs ~${expectedTokens}`);
  }
  for (const o of outcomes.filter((x) => x.aborted)) assert.ok(BEFORE_LILY.startsWith(o.text));
  await assertEngineIdle(eos.engine);
});

test('stop string: the text ends before "Lily" with finish_reason "stop", under concurrency and aborts', async () => {
  const outcomes = await concurrentMix(plain.url, { stop: ['Lily'] });
  const finished = outcomes.filter((o) => !o.aborted);
  assert.equal(finished.length, 10);
  for (const o of finished) {
    assert.equal(o.text, STORIES_GREEDY.slice(0, STORIES_GREEDY.indexOf('Lily')));
    assert.equal(o.finish, 'stop');
  }
  await assertEngineIdle(plain.engine);
});

test('the length path for contrast: max_tokens ends with finish_reason "length"', async () => {
  const o = await complete(eos.url, { max_tokens: 3 }, true);
  assert.equal(o.finish, 'length');
  assert.equal(o.completionTokens, 3);
  assert.ok(BEFORE_LILY.startsWith(o.text));
});
