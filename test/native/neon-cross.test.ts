// The arm64 build checked from an x86-64 machine: every native source compiles with an aarch64 cross
// compiler and links into an addon whose only open symbols are Node-API's and the C/C++ runtime's; the
// NEON kernel set, run under qemu, agrees with the portable kernels (native/tests/kernel_parity.cc:
// every weight type's matmul, the elementwise ops and the KV-format tiles on random data); and that
// addon, loaded by Debian's arm64 Node.js under qemu, passes the ops tests (bit for bit where they ask
// it) and the model tests on the NEON kernels: the bundled model and its quantized versions give the
// reference backend's greedy tokens.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { repoRoot } from '../paths.js';

const CXX = 'aarch64-linux-gnu-g++';
const NM = 'aarch64-linux-gnu-nm';
const QEMU = 'qemu-aarch64';
const hasTools = [CXX, NM, QEMU].every((tool) => spawnSync(tool, ['--version']).status === 0);
// In CI the tools must be there (.ci/run installs them); elsewhere their absence only skips these tests.
const skip = !hasTools && !process.env.CI
  ? 'no aarch64 cross compiler or qemu (apt-get install g++-aarch64-linux-gnu qemu-user)' : false;
/** Debian's arm64 Node.js, unpacked by scripts/arm64-node-sysroot.sh (.ci/run does). */
const armNodeRoot = join(repoRoot, '.cache', 'arm64-node');
const armNode = join(armNodeRoot, 'usr', 'bin', 'node');
const skipArmNode = skip || (!existsSync(armNode) && !process.env.CI
  ? 'no arm64 Node.js (bash scripts/arm64-node-sysroot.sh .cache/arm64-node)' : false);

const work = mkdtempSync(join(tmpdir(), 'vserve-neon-'));
after(() => rmSync(work, { recursive: true, force: true }));

const native = join(repoRoot, 'native');
const isaDir = join(native, 'isa');
/** What binding.gyp builds on arm64: native/*.cc, the portable kernels and the NEON kernels. */
const armIsaSources = readdirSync(isaDir).filter((f) => /^(portable|neon)_.*\.cc$/.test(f)).map((f) => join(isaDir, f));
const addonSources = [...readdirSync(native).filter((f) => f.endsWith('.cc')).map((f) => join(native, f)), ...armIsaSources];

/** Runs the commands two at a time (this machine's cores); rejects with the first failure's output. */
async function runAll(commands: { command: string; args: string[] }[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < commands.length) {
      const { command, args } = commands[next++]!;
      await new Promise<void>((resolve, reject) => {
        const child = spawn(command, args, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.slice(-3).join(' ')} failed:\n${stderr}`))));
      });
    }
  };
  await Promise.all([worker(), worker()]);
}

function run(command: string, args: string[], timeoutMs = 300_000) {
  const r = spawnSync(command, args, { encoding: 'utf8', cwd: repoRoot, timeout: timeoutMs, maxBuffer: 64 << 20 });
  assert.equal(r.error, undefined, `${command}: ${r.error?.message}`);
  assert.equal(r.status, 0, `${command} ${args.slice(-3).join(' ')} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

const armAddon = join(work, 'vserve_native.node');

test('the addon compiles and links for arm64, leaving only Node-API and runtime symbols open', { skip }, async () => {
  assert.ok(hasTools, 'aarch64-linux-gnu-g++ and qemu-aarch64 are needed (apt-get install g++-aarch64-linux-gnu qemu-user)');
  // Node-API's C headers (the same on every architecture): beside the running Node.js, where node-gyp
  // finds them for the native build too, or from the node-api-headers package where that is installed.
  const nodeApi = [join(dirname(process.execPath), '..', 'include', 'node'), join(repoRoot, 'node_modules', 'node-api-headers', 'include')]
    .find((dir) => existsSync(join(dir, 'node_api.h')));
  assert.ok(nodeApi !== undefined, `no node_api.h beside ${process.execPath} or in node-api-headers`);
  const headers = [nodeApi, join(repoRoot, 'node_modules', 'node-addon-api')];
  // binding.gyp's flags for arm64, at -O2 (shorter to build; the models run under emulation anyway).
  const flags = ['-std=c++17', '-O2', '-fPIC', '-fexceptions', '-fno-math-errno', '-fno-trapping-math', '-ffp-contract=off', '-DNAPI_VERSION=8',
    '-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_CPP_EXCEPTIONS_ALL', ...headers.map((h) => `-I${h}`)];
  const objects = addonSources.map((_, i) => join(work, `${i}.o`));
  await runAll(addonSources.map((source, i) => ({ command: CXX, args: [...flags, '-c', source, '-o', objects[i]!] })));
  const addon = armAddon;
  run(CXX, ['-shared', '-pthread', '-o', addon, ...objects]);
  const open = run(NM, ['-u', '-C', addon]).split('\n').map((l) => l.trim().replace(/^[Uw]\s+/, '')).filter(Boolean);
  const unexpected = open.filter((s) => !/^(napi_|node_api_|_ITM_|__gmon_start__|__cxa|__gxx|_Unwind|__aarch64_)|@(GLIBC|GCC|CXXABI|GLIBCXX)/.test(s));
  assert.deepEqual(unexpected, [], 'symbols the arm64 addon uses but nothing defines');
  assert.ok(open.some((s) => s.startsWith('napi_')), 'the addon should call into Node-API');
});

test('the NEON kernels agree with the portable kernels under qemu', { skip }, () => {
  assert.ok(hasTools, 'aarch64-linux-gnu-g++ and qemu-aarch64 are needed (apt-get install g++-aarch64-linux-gnu qemu-user)');
  const parity = join(work, 'kernel-parity');
  const sources = [join(native, 'tests', 'kernel_parity.cc'), ...armIsaSources, join(native, 'ggml_types.cc'), join(native, 'kv_format.cc')];
  run(CXX, ['-std=c++17', '-O2', '-ffp-contract=off', '-static', '-o', parity, ...sources]);
  const out = run(QEMU, [parity]);
  const lines = out.split('\n').filter((l) => l.startsWith('neon '));
  assert.deepEqual(lines.filter((l) => !/ (ok|identical)$/.test(l)), [], 'NEON results off the portable ones');
  // Every weight type's matmul and every KV tile was compared (a kernel set missing one would skip it).
  for (const kernel of ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_XS', 'F32', 'F16', 'BF16']) {
    assert.ok(lines.some((l) => l.includes(` matmul${kernel} `)), `matmul${kernel} was not compared on NEON`);
  }
  for (const tile of ['f16', 'q8_0', 'q4_0']) {
    assert.ok(lines.some((l) => l.includes(`kvTiles ${tile} score`)), `the ${tile} KV tile was not compared on NEON`);
  }
  assert.match(out, /all kernels agree/);
});

test('on arm64 Node.js under qemu, the ops and model tests pass on the NEON kernels', { skip: skipArmNode }, () => {
  assert.ok(existsSync(armNode), `${armNode} is missing: bash scripts/arm64-node-sysroot.sh .cache/arm64-node`);
  assert.ok(existsSync(armAddon), 'the arm64 addon was not built (the first test in this file builds it)');
  // A copy of the package whose build/ holds the arm64 addon; the tests find models and fixtures beside it.
  const pkg = join(work, 'package');
  mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
  cpSync(armAddon, join(pkg, 'build', 'Release', 'vserve_native.node'));
  cpSync(join(repoRoot, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(repoRoot, 'dist'), join(pkg, 'dist'), { recursive: true });
  for (const linked of ['node_modules', 'models', 'test']) symlinkSync(join(repoRoot, linked), join(pkg, linked));
  // The child reports as a plain node:test run (TAP), not to this runner.
  const env: NodeJS.ProcessEnv = { ...process.env, QEMU_LD_PREFIX: armNodeRoot, VSERVE_ISA: 'neon' };
  delete env.NODE_TEST_CONTEXT;
  for (const file of ['ops', 'model', 'model-block32', 'superblock-model']) {
    const r = spawnSync(QEMU, [armNode, join('dist', 'test', 'native', `${file}.test.js`)], {
      cwd: pkg, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20, env,
    });
    assert.equal(r.error, undefined, `${file}: ${r.error?.message}`);
    assert.equal(r.status, 0, `${file}.test.js on arm64:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^# fail 0$/m, `${file}.test.js on arm64:\n${r.stdout}`);
    assert.doesNotMatch(r.stdout, /^# pass 0$/m, `${file}.test.js ran no test on arm64`);
    assert.doesNotMatch(r.stdout, /^# skipped [1-9]/m, `${file}.test.js skipped tests on arm64:\n${r.stdout}`);
  }
});
