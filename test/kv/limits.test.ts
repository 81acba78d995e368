// Hitting the OS's limits is a clear error, never a crash. Each case runs in a child process, since
// the limits are process-wide (address space, number of mappings).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { GrowResult } from '../../src/kv/index.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';

const KV_MODULE = new URL('../../src/kv/index.js', import.meta.url).href;

function runChild(script: string, shellPrefix = ''): { status: number | null; stdout: string; stderr: string } {
  const body = `const { VirtualKVManager } = await import(${JSON.stringify(KV_MODULE)});\n${script}`;
  const result = spawnSync('/bin/sh', ['-c', `${shellPrefix} exec "$NODE" --input-type=module -e "$KV_SCRIPT"`], {
    env: { ...process.env, NODE: process.execPath, KV_SCRIPT: body },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('more scattered pages than vm.max_map_count allows: a refusal naming the sysctl, nothing mapped, process fine', () => {
  // 40,000 slots x 2 ranges, one 4 KiB page each with a gap after it: ~160,000 VMAs, far past 65,530.
  const { status, stdout, stderr } = runChild(`
    const N = 40000;
    const kv = new VirtualKVManager({ layers: 1, kvHeads: 1, headDim: 16, maxSlots: N, maxContext: 128, type: { k: 'f32', v: 'f32' }, pageSize: 4096,
      budgetBytes: 2 * N * 4096, deferredReclaim: false });
    const lens = new Int32Array(N).fill(1);
    for (let i = 0; i < N; i++) kv.allocSlot();
    const refused = kv.step(lens);
    const stats = kv.stats();
    const small = kv.step(lens.map((_, i) => (i < 100 ? 1 : 0)));
    console.log(JSON.stringify({ refused, used: stats.usedPages, tokens: stats.storedTokens, small: small.ok }));
  `);
  assert.equal(status, 0, stderr);
  const out = JSON.parse(stdout) as { refused: GrowResult; used: number; tokens: number; small: boolean };
  assert.equal(out.refused.ok, false);
  assert.equal(out.refused.limit, 'mappings');
  assert.match(out.refused.reason!, /vm\.max_map_count/);
  assert.match(out.refused.reason!, /bigger KV page size/);
  assert.equal(out.used, 0, 'the refused step mapped nothing');
  assert.equal(out.tokens, 0);
  assert.equal(out.small, true, 'a step that fits still works');
});

// In a child: takes the process's mappings up to vm.max_map_count's margin with a second manager's
// scattered 4 KiB pages (4 VMAs per slot), halving its steps as they get refused. Needs maxMapCount().
const FILL_MAPPINGS = `
  function fillMappings() {
    const limit = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
    const N = Math.ceil(limit / 3);
    const hog = new VirtualKVManager({ layers: 1, kvHeads: 1, headDim: 16, maxSlots: N, maxContext: 128, type: { k: 'f32', v: 'f32' }, pageSize: 4096,
      budgetBytes: 2 * N * 4096, deferredReclaim: false });
    const lens = new Int32Array(N);
    let used = 0;
    for (let chunk = 4096; chunk >= 1 && used < N; ) {
      const n = Math.min(chunk, N - used);
      for (let i = 0; i < n; i++) hog.allocSlot();
      lens.fill(0);
      lens.fill(1, used, used + n);
      if (hog.step(lens).ok) used += n;
      else {
        for (let i = used; i < used + n; i++) hog.freeSlot(i);
        chunk >>= 1;
      }
    }
    return hog;
  }
`;

/** vm.max_map_count, or a skip reason where it is too high to fill in a test. */
function mappingLimitSkip(): string | undefined {
  const limit = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
  return limit > 1_000_000 ? `vm.max_map_count is ${limit}: too many mappings to fill in a test` : undefined;
}

test('at the mapping limit, idle slots give up their mappings so that a step fits', { skip: mappingLimitSkip() }, () => {
  const { status, stdout, stderr } = runChild(`
    const { readFileSync } = await import('node:fs');
    ${FILL_MAPPINGS}
    // 3000 slots of one 4 KiB page per range, scattered: ~12,000 VMAs, kept by the slots once idle.
    const M = 3000;
    const kv = new VirtualKVManager({ layers: 1, kvHeads: 1, headDim: 16, maxSlots: M + M / 2, maxContext: 128, type: { k: 'f32', v: 'f32' }, pageSize: 4096,
      budgetBytes: 4 * M * 4096 });
    const lens = new Int32Array(M + M / 2);
    for (let i = 0; i < M + M / 2; i++) kv.allocSlot();
    lens.fill(1, 0, M);
    if (!kv.step(lens).ok) throw new Error('setup step refused');
    for (let i = 0; i < M; i++) kv.freeSlot(i);
    const before = kv.stats();
    const hog = fillMappings();
    lens.fill(0);
    lens.fill(1, M);
    const r = kv.step(lens);
    const after = kv.stats();
    console.log(JSON.stringify({ r, idleBefore: before.idleSlots, idleAfter: after.idleSlots, tokens: after.storedTokens }));
    hog.close();
    kv.close();
  `);
  assert.equal(status, 0, stderr);
  const out = JSON.parse(stdout) as { r: GrowResult; idleBefore: number; idleAfter: number; tokens: number };
  assert.equal(out.idleBefore, 3000);
  assert.equal(out.r.ok, true, JSON.stringify(out.r));
  assert.equal(out.idleAfter, 0, 'the idle slots were unmapped to make room');
  assert.equal(out.tokens, 1500);
});

test('at the mapping limit, mapping cached blocks into new slots is refused, not a crash, and works once mappings are free', { skip: mappingLimitSkip() }, () => {
  const { status, stdout, stderr } = runChild(`
    const { readFileSync } = await import('node:fs');
    ${FILL_MAPPINGS}
    // One cached block (64 tokens of 64 bytes: one page per range), mapped into ever more slots.
    const M = 6000;
    const kv = new VirtualKVManager({ layers: 1, kvHeads: 1, headDim: 16, maxSlots: M, maxContext: 128, type: { k: 'f32', v: 'f32' }, pageSize: 4096,
      budgetBytes: 64 * 4096, deferredReclaim: false });
    const lens = new Int32Array(M);
    const first = kv.allocSlot();
    lens[first] = 64;
    if (!kv.step(lens).ok) throw new Error('setup step refused');
    const block = kv.blocks.retain(first, 0);
    kv.freeSlot(first);
    const hog = fillMappings();
    let attached = 0;
    let refusal;
    for (let i = 0; i < M && !refusal; i++) {
      const slot = kv.allocSlot();
      const r = kv.blocks.attach(slot, [block]);
      if (r.ok) attached++;
      else {
        refusal = { ...r, tokens: kv.tokens(slot) };
        kv.freeSlot(slot);
      }
    }
    hog.close();
    const slot = kv.allocSlot();
    const after = kv.blocks.attach(slot, [block]);
    console.log(JSON.stringify({ attached, refusal, after: after.ok, tokens: kv.tokens(slot) }));
    kv.close();
  `);
  assert.equal(status, 0, stderr);
  const out = JSON.parse(stdout) as { attached: number; refusal?: GrowResult & { tokens: number }; after: boolean; tokens: number };
  assert.ok(out.refusal, `never refused after ${out.attached} slots`);
  assert.equal(out.refusal.limit, 'mappings');
  assert.match(out.refusal.reason!, /vm\.max_map_count/);
  assert.equal(out.refusal.tokens, 0, 'the refused slot holds nothing');
  assert.equal(out.after, true, 'with the mappings back, the cached block maps again');
  assert.equal(out.tokens, 64);
});

test('an engine at the mapping limit fails the request it cannot map with the sysctl named, and serves the next', { skip: mappingLimitSkip() }, () => {
  const { status, stdout, stderr } = runChild(`
    const { readFileSync } = await import('node:fs');
    const { loadModel } = await import(${JSON.stringify(new URL('../../src/model/load.js', import.meta.url).href)});
    const { createEngineCore } = await import(${JSON.stringify(new URL('../../src/engine/engine-setup.js', import.meta.url).href)});
    ${FILL_MAPPINGS}
    const { model, tokenizer } = loadModel(${JSON.stringify(bundledModel)}, { backend: 'reference' });
    const core = createEngineCore(model, tokenizer, { kvManager: 'virtual', maxSeqs: 4, maxContext: 128, pageSize: 4096 });
    const run = (id) => {
      const out = { text: '' };
      const take = (events) => { for (const e of events) { if (e.error) out.error = e.error.message; if (e.delta) out.text += e.delta.text; } };
      take(core.submit(id, 'Once upon a time', { temperature: 0, maxTokens: 12 }));
      for (let i = 0; core.hasWork && i < 1000; i++) take(core.step());
      return out;
    };
    const hog = fillMappings();
    const refused = run(1);
    hog.close();
    const served = run(2);
    console.log(JSON.stringify({ refused, served, active: core.kv.stats().activeSlots }));
  `);
  assert.equal(status, 0, stderr);
  const out = JSON.parse(stdout) as { refused: { text: string; error?: string }; served: { text: string; error?: string }; active: number };
  assert.match(out.refused.error ?? '', /vm\.max_map_count/);
  assert.equal(out.refused.text, '');
  assert.equal(out.served.error, undefined);
  assert.ok(STORIES_GREEDY.startsWith(out.served.text) && out.served.text.length > 20, out.served.text);
  assert.equal(out.active, 0);
});

test('a reservation that RLIMIT_AS does not allow says what to change', () => {
  const { status, stdout, stderr } = runChild(
    `
    try {
      new VirtualKVManager({ layers: 32, kvHeads: 8, headDim: 128, maxSlots: 64, maxContext: 4096, budgetBytes: 1 << 28 });
      console.log('no error');
    } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
  `,
    'ulimit -v 4194304 &&',
  );
  assert.equal(status, 0, stderr);
  const out = JSON.parse(stdout) as { code: string; message: string };
  assert.equal(out.code, 'ERR_KV_ADDRESS_SPACE');
  assert.match(out.message, /RLIMIT_AS/);
  assert.match(out.message, /maxSlots/);
});
