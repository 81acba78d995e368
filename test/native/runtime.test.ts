// Runtime controls of the native core: ISA selection (and the VSERVE_ISA override), the thread count,
// the read-bandwidth probe, and the backend factory's default.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { createBackend } from '../../src/backend/index.js';
import { addon, isas } from './helpers.js';

test('the best supported ISA is the default and portable always exists', () => {
  assert.equal(isas[0], 'portable');
  assert.equal(addon.isa(), isas[isas.length - 1]);
  assert.throws(() => addon.selectIsa('sse1'), /not available/);
});

test('VSERVE_ISA forces an ISA at load time; a bad value fails loading with a clear message', () => {
  const script = "const m = require('./build/Release/vserve_native.node'); process.stdout.write(m.isa());";
  for (const isa of isas) {
    const got = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, VSERVE_ISA: isa } }).toString();
    assert.equal(got, isa);
  }
  assert.throws(
    () => execFileSync(process.execPath, ['-e', script], { env: { ...process.env, VSERVE_ISA: 'bogus' }, stdio: 'pipe' }),
    (e: Error & { stderr?: Buffer }) => /VSERVE_ISA: ISA 'bogus' is not available/.test(String(e.stderr)),
  );
});

test('thread count can be set and restored to the default', () => {
  const before = addon.getThreads();
  assert.ok(before >= 1);
  assert.equal(addon.setThreads(3), 3);
  assert.equal(addon.getThreads(), 3);
  assert.equal(addon.setThreads(0), before);
  assert.throws(() => addon.setThreads(-1), RangeError);
});

test('readBandwidth reports a plausible read rate', () => {
  const r = addon.readBandwidth(64 << 20, 1);
  assert.equal(r.threads, 1);
  assert.ok(r.bytes > 0 && r.seconds > 0 && r.bytesPerSecond > 1e8, JSON.stringify(r));
  assert.throws(() => addon.readBandwidth(1000), RangeError);
});

test('createBackend picks the native backend by default', () => {
  const b = createBackend();
  assert.equal(b.name, 'native');
  b.close();
  assert.equal(createBackend('reference').name, 'reference');
});

test('peakCompute measures the arithmetic peak of the ISA in use (NaN where it has no probe)', () => {
  const before = addon.isa();
  try {
    for (const isa of isas) {
      addon.selectIsa(isa);
      const r = addon.peakCompute(1);
      assert.equal(r.isa, isa);
      assert.equal(r.threads, 1);
      if (isa === 'portable') {
        assert.ok(Number.isNaN(r.f32Flops) && Number.isNaN(r.int8Ops), JSON.stringify(r));
      } else {
        // A rate was measured; how high it is depends on the machine and its load, which is the benchmark's business.
        assert.ok(Number.isFinite(r.f32Flops) && r.f32Flops > 0, JSON.stringify(r));
        if (isa !== 'neon') assert.ok(Number.isFinite(r.int8Ops) && r.int8Ops > 0, JSON.stringify(r));
      }
    }
  } finally {
    addon.selectIsa(before);
  }
  assert.throws(() => addon.peakCompute(0), RangeError);
});
