// The disk tier against the files it leaves: values come back byte for byte; containsRun counts the
// leading run; the least recently used values go first under the cap; a restart finds the values, their
// recency and no unfinished writes; a full disk skips writes and a failing one rejects; files deleted or
// changed behind the tier's back read as absent.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { DiskTier, nodeFileSystem, type DiskTierOptions } from '../../../src/kv/tiers/disk-tier.js';

const root = mkdtempSync(join(tmpdir(), 'vserve-disk-tier-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `t${dirs++}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every file under `dir`, relative paths. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => statSync(join(dir, p)).isFile()).sort();
}

function open(options: Partial<DiskTierOptions> & { directory: string }): Promise<DiskTier> {
  return DiskTier.open({ capBytes: 64 << 20, ...options });
}

function ioError(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

test('multi-MB values come back byte for byte, absent keys as undefined', async () => {
  const tier = await open({ directory: freshDir() });
  const a = randomBytes(3 * 1024 * 1024 + 7);
  // A view into a larger buffer: only its own bytes may be stored.
  const backing = randomBytes(5 * 1024 * 1024);
  const b = new Uint8Array(backing.buffer, backing.byteOffset + 1001, 2 * 1024 * 1024 + 3);
  await tier.put('key-a', a);
  await tier.put('key-b', b);
  const got = await tier.get(['key-b', 'absent', 'key-a']);
  assert.equal(got.length, 3);
  assert.ok(Buffer.from(got[0]!).equals(Buffer.from(b)));
  assert.equal(got[1], undefined);
  assert.ok(Buffer.from(got[2]!).equals(a));
  const s = tier.stats();
  assert.deepEqual([s.puts, s.putBytes, s.gets, s.getBytes, s.failures, s.skippedWrites, s.up], [2, a.length + b.length, 2, a.length + b.length, 0, 0, true]);
  assert.deepEqual(tier.usage(), { values: 2, bytes: a.length + b.length });
  await tier.close();
  assert.equal(tier.stats().up, false);
  await assert.rejects(tier.get(['key-a']), /closed/);
});

test('keys that differ only in case are different values; file names are safe', async () => {
  const directory = freshDir();
  const tier = await open({ directory });
  const keys = ['Ab-_09', 'aB-_09', 'prefix:x.y', '..', '.'];
  for (const [i, k] of keys.entries()) await tier.put(k, Uint8Array.of(i, i + 1));
  const got = await tier.get(keys);
  assert.deepEqual(got.map((v) => [...v!]), keys.map((_, i) => [i, i + 1]));
  for (const f of filesUnder(directory)) assert.match(f, /^[0-9a-f]{2}[/\\][0-9a-f]{62}$/);
  await tier.close();
});

test('invalid keys are refused with a reason', async () => {
  const tier = await open({ directory: freshDir() });
  await assert.rejects(tier.put('a/b', Uint8Array.of(1)), /may hold only/);
  await assert.rejects(tier.get(['ok', 'bad key']), /may hold only/);
  await assert.rejects(tier.containsRun(['x'.repeat(257)]), /at most 256/);
  await assert.rejects(tier.put('', Uint8Array.of(1)), /non-empty/);
  assert.equal(tier.stats().puts, 0);
  await tier.close();
});

test('containsRun counts the leading run of stored keys: a gap ends it', async () => {
  const tier = await open({ directory: freshDir() });
  for (const k of ['k0', 'k1', 'k3']) await tier.put(k, randomBytes(100));
  assert.equal(await tier.containsRun(['k0', 'k1', 'k2', 'k3']), 2);
  assert.equal(await tier.containsRun(['k0', 'k1']), 2);
  assert.equal(await tier.containsRun(['k2', 'k3']), 0);
  assert.equal(await tier.containsRun(['k3']), 1);
  assert.equal(await tier.containsRun([]), 0);
  await tier.close();
});

test('under the cap the least recently used values are dropped first; reads keep values', async () => {
  const directory = freshDir();
  const size = 100_000;
  const tier = await open({ directory, capBytes: 3 * size + 10 });
  const values = new Map(['a', 'b', 'c', 'd', 'e'].map((k) => [k, randomBytes(size)]));
  for (const k of ['a', 'b', 'c']) await tier.put(k, values.get(k)!);
  await tier.get(['a']); // a is now more recent than b and c
  await tier.put('d', values.get('d')!); // b goes
  assert.deepEqual(await Promise.all(['a', 'b', 'c', 'd'].map((k) => tier.containsRun([k]))), [1, 0, 1, 1]);
  await tier.put('e', values.get('e')!); // then c
  assert.deepEqual(await Promise.all(['a', 'b', 'c', 'd', 'e'].map((k) => tier.containsRun([k]))), [1, 0, 0, 1, 1]);
  const got = await tier.get(['a', 'd', 'e']);
  for (const [i, k] of ['a', 'd', 'e'].entries()) assert.ok(Buffer.from(got[i]!).equals(values.get(k)!), k);
  assert.equal(filesUnder(directory).length, 3);
  assert.deepEqual(tier.usage(), { values: 3, bytes: 3 * size });
  assert.equal(tier.stats().skippedWrites, 0);
  await tier.close();
});

test('a value larger than the cap is skipped and counted; a stored key is not written again', async () => {
  const directory = freshDir();
  const tier = await open({ directory, capBytes: 1000 });
  await tier.put('small', randomBytes(600));
  await tier.put('huge', randomBytes(1001));
  assert.equal(tier.stats().skippedWrites, 1);
  assert.equal(await tier.containsRun(['small']), 1, 'nothing was dropped for a value that cannot fit');
  assert.equal(await tier.containsRun(['huge']), 0);
  // Same key again, alone and concurrently: one file, one counted put, no temporary files left.
  const twice = randomBytes(300);
  await Promise.all([tier.put('twice', twice), tier.put('twice', twice)]);
  await tier.put('small', randomBytes(600));
  assert.equal(tier.stats().puts, 2);
  assert.equal(filesUnder(directory).length, 2);
  assert.ok(Buffer.from((await tier.get(['twice']))[0]!).equals(twice));
  await tier.close();
});

test('concurrent puts never exceed the cap', async () => {
  const directory = freshDir();
  const size = 50_000;
  const tier = await open({ directory, capBytes: 4 * size });
  await Promise.all(Array.from({ length: 20 }, (_, i) => tier.put(`v${i}`, randomBytes(size))));
  const onDisk = filesUnder(directory).reduce((sum, f) => sum + statSync(join(directory, f)).size, 0);
  assert.ok(onDisk <= 4 * size, `${onDisk} bytes on disk`);
  assert.equal(tier.usage().bytes, onDisk);
  const s = tier.stats();
  assert.equal(s.puts + s.skippedWrites, 20);
  assert.ok(s.puts >= 4);
  await tier.close();
});

test('a restart rebuilds the index from the directory: values, recency, no unfinished writes', async () => {
  const directory = freshDir();
  const size = 10_000;
  const values = new Map(['a', 'b', 'c', 'd'].map((k) => [k, randomBytes(size)]));
  const first = await open({ directory });
  for (const k of ['a', 'b', 'c']) {
    await first.put(k, values.get(k)!);
    await sleep(30); // recency across a restart comes from file times
  }
  await first.get(['a']);
  await sleep(30);
  await first.close();
  // An unfinished write of a crashed process, and a file that is not the tier's.
  const sub = filesUnder(directory)[0]!.slice(0, 2);
  writeFileSync(join(directory, sub, `${'0'.repeat(62)}.999-1.tmp`), 'partial');
  writeFileSync(join(directory, 'notes.txt'), 'not ours');

  const lines: string[] = [];
  const second = await open({ directory, capBytes: 3 * size, log: (l) => lines.push(l) });
  assert.deepEqual(second.usage(), { values: 3, bytes: 3 * size });
  const got = await second.get(['a', 'b', 'c']);
  for (const [i, k] of ['a', 'b', 'c'].entries()) assert.ok(Buffer.from(got[i]!).equals(values.get(k)!), k);
  assert.ok(!filesUnder(directory).some((f) => f.endsWith('.tmp')), 'the temporary file is deleted');
  assert.ok(filesUnder(directory).includes('notes.txt'), 'files that are not the tier\'s stay');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /3 values \(30000 bytes\) found.*1 unfinished write/);
  await second.close();

  // A start with a smaller cap deletes the oldest values until the rest fit.
  const third = await open({ directory, capBytes: size });
  assert.equal(third.usage().values, 1);
  assert.equal(filesUnder(directory).length, 2, 'one value and notes.txt');
  await third.close();
});

test('the order of reads survives a restart', async () => {
  const directory = freshDir();
  const size = 10_000;
  const first = await open({ directory });
  for (const k of ['a', 'b', 'c']) await first.put(k, randomBytes(size));
  await sleep(30);
  await first.get(['a']);
  await sleep(30);
  await first.close();
  const second = await open({ directory, capBytes: 3 * size });
  await second.put('d', randomBytes(size)); // the least recent of b and c goes, never a
  assert.equal(await second.containsRun(['a', 'd']), 2);
  assert.equal((await second.containsRun(['b'])) + (await second.containsRun(['c'])), 1);
  await second.close();
});

test('a full disk skips the write (counted, logged once); other write errors reject', async () => {
  const directory = freshDir();
  let failWith: string | undefined = 'ENOSPC';
  const lines: string[] = [];
  const tier = await open({
    directory,
    log: (l) => lines.push(l),
    fs: {
      writeFile: async (path, data) => {
        if (failWith) {
          // Like a real full disk: part of the file may exist.
          await nodeFileSystem.writeFile(path, data.subarray(0, 10));
          throw ioError(failWith);
        }
        return nodeFileSystem.writeFile(path, data);
      },
    },
  });
  await tier.put('x', randomBytes(1000));
  failWith = 'EDQUOT';
  await tier.put('y', randomBytes(1000));
  let s = tier.stats();
  assert.deepEqual([s.puts, s.skippedWrites, s.failures], [0, 2, 0]);
  assert.equal(await tier.containsRun(['x']), 0);
  assert.deepEqual(filesUnder(directory), [], 'no partial file stays');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /full \(ENOSPC\)/);

  failWith = undefined;
  await tier.put('x', Uint8Array.of(1, 2, 3));
  assert.deepEqual([...(await tier.get(['x']))[0]!], [1, 2, 3]);
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /again/);

  failWith = 'EIO';
  await assert.rejects(tier.put('z', randomBytes(10)), /EIO/);
  s = tier.stats();
  assert.deepEqual([s.puts, s.skippedWrites, s.failures], [1, 2, 1]);
  assert.equal(await tier.containsRun(['z']), 0);
  assert.equal(tier.usage().bytes, 3);
  await tier.close();
});

test('a read error rejects and counts a failure', async () => {
  let failReads = false;
  const tier = await open({
    directory: freshDir(),
    fs: { readFile: (path) => (failReads ? Promise.reject(ioError('EIO')) : nodeFileSystem.readFile(path)) },
  });
  await tier.put('k', randomBytes(10));
  failReads = true;
  await assert.rejects(tier.get(['k']), /EIO/);
  assert.equal(tier.stats().failures, 1);
  failReads = false;
  assert.equal((await tier.get(['k']))[0]!.length, 10);
  await tier.close();
});

test('files deleted or changed behind the tier read as absent and leave the index', async () => {
  const directory = freshDir();
  const tier = await open({ directory });
  const kept = randomBytes(500);
  await tier.put('gone', randomBytes(500));
  await tier.put('changed', randomBytes(500));
  await tier.put('kept', kept);
  // The documented file name: SHA-256 of the key in hex, split after two digits.
  const pathOf = (key: string) => {
    const hex = createHash('sha256').update(key).digest('hex');
    return join(directory, hex.slice(0, 2), hex.slice(2));
  };
  unlinkSync(pathOf('gone'));
  writeFileSync(pathOf('changed'), randomBytes(400));
  assert.equal(await tier.containsRun(['gone', 'changed', 'kept']), 3, 'the index does not look at the disk');
  const got = await tier.get(['gone', 'changed', 'kept']);
  assert.equal(got[0], undefined);
  assert.equal(got[1], undefined);
  assert.ok(Buffer.from(got[2]!).equals(kept));
  assert.equal(await tier.containsRun(['gone']), 0);
  assert.equal(await tier.containsRun(['changed']), 0);
  assert.deepEqual(tier.usage(), { values: 1, bytes: 500 });
  assert.equal(tier.stats().failures, 0);
  await tier.close();
  assert.deepEqual(filesUnder(directory), [relative(directory, pathOf('kept'))], 'the changed file is deleted');
});

test('open refuses a bad cap and a directory it cannot create', async () => {
  await assert.rejects(DiskTier.open({ directory: freshDir(), capBytes: 0 }), /positive whole number/);
  await assert.rejects(DiskTier.open({ directory: freshDir(), capBytes: 1.5 }), /positive whole number/);
  const file = join(root, 'a-file');
  writeFileSync(file, '');
  await assert.rejects(DiskTier.open({ directory: join(file, 'sub'), capBytes: 1000 }), /ENOTDIR/);
});
