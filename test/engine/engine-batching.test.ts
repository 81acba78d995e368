// At temperature 0 a request's tokens must not depend on what it is batched with: every scheduler and
// every KV manager, 16 requests of different lengths at once, each equal to generate() alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEngineCore } from '../../src/engine/engine-setup.js';
import { aloneTokens, drain, KV_MANAGERS, mixedRequests, SCHEDULERS, tinyModel, virtualUnavailable } from './engine-helpers.js';

const requests = mixedRequests(16);
const expected = requests.map((r) => aloneTokens(r.prompt, { temperature: 0, maxTokens: r.maxTokens }));

for (const scheduler of SCHEDULERS) {
  for (const kvManager of KV_MANAGERS) {
    const skip = kvManager === 'virtual' ? virtualUnavailable() : undefined;
    test(`${scheduler} scheduler, ${kvManager} KV: 16 mixed requests batched give the tokens each gives alone`, { skip }, () => {
      const { model, tokenizer } = tinyModel();
      // A small token budget forces chunked prefills next to running decodes.
      const core = createEngineCore(model, tokenizer, { scheduler, kvManager, maxSeqs: 16, maxBatchTokens: 48, maxContext: 128 });
      requests.forEach((r, id) => assert.deepEqual(core.submit(id, r.prompt, { temperature: 0, maxTokens: r.maxTokens }), []));
      const out = drain(core);
      requests.forEach((_, id) => {
        const o = out.get(id)!;
        assert.equal(o.error, undefined);
        assert.deepEqual(o.tokens, expected[id], `request ${id}`);
        assert.equal(o.last?.finish_reason, o.tokens.length === requests[id]!.maxTokens ? 'length' : 'stop');
        assert.equal(o.last?.usage?.prompt_tokens, requests[id]!.prompt.length);
      });
      assert.ok(core.stats().step.steps < requests.reduce((n, r) => n + r.prompt.length + r.maxTokens, 0) / 4, 'requests were batched');
      core.close();
    });
  }
}

test('sarathi puts every running decode in each step and fills the budget with prefill chunks', () => {
  const { model, tokenizer } = tinyModel();
  const core = createEngineCore(model, tokenizer, { scheduler: 'sarathi', kvManager: 'paged', maxSeqs: 4, maxBatchTokens: 16, maxContext: 128 });
  const [a, b] = mixedRequests(6).slice(4);
  core.submit(1, a!.prompt, { temperature: 0, maxTokens: 20 });
  while (core.stats().running === 0 || core.scheduler.running[0]!.pending > 1) core.step();
  core.submit(2, b!.prompt, { temperature: 0, maxTokens: 20 });
  core.step();
  const s = core.stats().step;
  assert.equal(s.lastDecodeTokens, 1);
  assert.equal(s.lastPrefillTokens, Math.min(15, b!.prompt.length));
  core.close();
});

test('vllm runs whole prompts in prefill-only steps; decodes wait', () => {
  const { model, tokenizer } = tinyModel();
  const core = createEngineCore(model, tokenizer, { scheduler: 'vllm', kvManager: 'paged', maxSeqs: 4, maxBatchTokens: 16, maxContext: 128 });
  const [a, b] = mixedRequests(6).slice(4);
  core.submit(1, a!.prompt, { temperature: 0, maxTokens: 20 });
  core.step();
  assert.equal(core.stats().step.lastPrefillTokens, a!.prompt.length, 'a long prompt is not chunked');
  core.submit(2, b!.prompt, { temperature: 0, maxTokens: 20 });
  core.step();
  assert.deepEqual([core.stats().step.lastDecodeTokens, core.stats().step.lastPrefillTokens], [0, b!.prompt.length]);
  core.close();
});
