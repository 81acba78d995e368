// Hitting the OS's limits is a clear error, never a crash. Each case runs in a child process, since
// the limits are process-wide (address space, number of mappings).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

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

test('more scattered pages than vm.max_map_count allows: a clear error naming the sysctl, nothing mapped, process fine', () => {
  // 40,000 slots x 2 ranges, one 4 KiB page each with a gap after it: ~160,000 VMAs, far past 65,530.
  const { status, stdout, stderr } = runChild(`
    const N = 40000;
    const kv = new VirtualKVManager({ layers: 1, kvHeads: 1, headDim: 16, maxSlots: N, maxContext: 128, pageSize: 4096,
      budgetBytes: 2 * N * 4096, deferredReclaim: false });
    const lens = new Int32Array(N).fill(1);
    for (let i = 0; i < N; i++) kv.allocSlot();
    let error;
    try { kv.step(lens); } catch (e) { error = e; }
    const stats = kv.stats();
    const small = kv.step(lens.map((_, i) => (i < 100 ? 1 : 0)));
    console.log(JSON.stringify({ code: error?.code, message: error?.message, used: stats.usedPages, tokens: stats.storedTokens, small: small.ok }));
  `);
  assert.equal(status, 0, stderr);
  const out = JSON.parse(stdout) as { code: string; message: string; used: number; tokens: number; small: boolean };
  assert.equal(out.code, 'ERR_KV_MAX_MAP_COUNT');
  assert.match(out.message, /vm\.max_map_count/);
  assert.match(out.message, /bigger KV page size/);
  assert.equal(out.used, 0, 'the failed step mapped nothing');
  assert.equal(out.tokens, 0);
  assert.equal(out.small, true, 'a step that fits still works');
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
