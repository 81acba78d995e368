// Throughput of a KV tier as one replica sees it, and the same server's ceiling for one client: the
// cluster benchmark sets the tier's put and get rates beside redis-benchmark's SET and GET rates at the
// same value size (one connection, no pipelining, like one replica), so the tier's own overhead shows.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { BlockTier } from '../src/kv/tiers/tier.js';

export interface TierThroughput {
  valueBytes: number;
  count: number;
  keysPerGet: number;
  putsInFlight: number;
  putGBps: number;
  getGBps: number;
  /** Values get() did not find (evicted meanwhile, or a put skipped): their bytes are not counted. */
  missing: number;
}

/**
 * Puts `count` values of `valueBytes`, `putsInFlight` at a time, then reads them back in order `keysPerGet` keys
 * per call, as a replica loading a cached prefix would. Keys are new for every run, so no put is a no-op.
 */
export async function tierThroughput(tier: BlockTier, valueBytes: number, count: number, keysPerGet = 4, putsInFlight = 1): Promise<TierThroughput> {
  if (!(Number.isSafeInteger(valueBytes) && valueBytes > 0)) throw new RangeError(`valueBytes must be a positive integer, got ${valueBytes}`);
  if (!(Number.isSafeInteger(count) && count > 0)) throw new RangeError(`count must be a positive integer, got ${count}`);
  const run = randomBytes(6).toString('base64url');
  const keys = Array.from({ length: count }, (_, i) => `bench-${run}-${i}`);
  // One value for every key: the tiers store bytes as given, so their contents do not change the cost.
  const value = randomBytes(valueBytes);

  const putStart = performance.now();
  await putAll(tier, keys, value, putsInFlight);
  const putSeconds = (performance.now() - putStart) / 1000;

  let bytesRead = 0;
  let missing = 0;
  const getStart = performance.now();
  for (let i = 0; i < count; i += keysPerGet) {
    for (const v of await tier.get(keys.slice(i, i + keysPerGet))) {
      if (v === undefined) missing++;
      else bytesRead += v.byteLength;
    }
  }
  const getSeconds = (performance.now() - getStart) / 1000;
  return {
    valueBytes,
    count,
    keysPerGet,
    putsInFlight,
    putGBps: (count * valueBytes) / putSeconds / 1e9,
    getGBps: bytesRead / getSeconds / 1e9,
    missing,
  };
}

/** Puts `count` values of `valueBytes` under new keys, `putsInFlight` at a time, untimed. */
export async function fillTier(tier: BlockTier, valueBytes: number, count: number, putsInFlight = 1): Promise<void> {
  const run = randomBytes(6).toString('base64url');
  await putAll(tier, Array.from({ length: count }, (_, i) => `fill-${run}-${i}`), randomBytes(valueBytes), putsInFlight);
}

/** `value` under every key, as the tier store writes: up to putsInFlight at once. */
async function putAll(tier: BlockTier, keys: readonly string[], value: Uint8Array, putsInFlight: number): Promise<void> {
  for (let i = 0; i < keys.length; i += putsInFlight) await Promise.all(keys.slice(i, i + putsInFlight).map((key) => tier.put(key, value)));
}

export interface RedisBenchmarkThroughput {
  valueBytes: number;
  requests: number;
  setRps: number;
  getRps: number;
  setGBps: number;
  getGBps: number;
}

/** Requests per second by test name ('SET', 'GET') from `redis-benchmark --csv` output. */
export function parseRedisBenchmarkCsv(csv: string): Map<string, number> {
  const rates = new Map<string, number>();
  for (const line of csv.split(/\r?\n/)) {
    const cells = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    // The header row (redis-benchmark 6.2 and later) names the columns; older versions print none.
    if (cells.length < 2 || cells[0] === 'test') continue;
    const [test, rps] = cells as [string, string];
    // "inf" when the run ended within the tool's clock resolution: too few requests to time.
    if (!/^\d+(\.\d+)?$/.test(rps)) throw new Error(`redis-benchmark gave ${test} a rate of "${rps}" requests/s; run more requests`);
    rates.set(test, Number(rps));
  }
  return rates;
}

/**
 * Runs Debian's redis-benchmark against the Redis at `host:port`: SET then GET of one `valueBytes` value,
 * `requests` times each, over one connection (like one replica's client).
 */
export async function redisBenchmarkThroughput(port: number, valueBytes: number, requests: number, host = '127.0.0.1', timeoutMs = 600_000): Promise<RedisBenchmarkThroughput> {
  // redis-benchmark waits forever on a server it cannot reach, so reach it first.
  await checkReachable(host, port);
  const args = ['-h', host, '-p', String(port), '-t', 'set,get', '-d', String(valueBytes), '-n', String(requests), '-c', '1', '--csv'];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('redis-benchmark', args, { maxBuffer: 1 << 20, timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, out, err) => {
      if (!error) return resolve(out);
      const e = error as Error & { code?: unknown; killed?: boolean };
      if (e.code === 'ENOENT') reject(new Error('redis-benchmark is not installed (apt-get install -y redis-tools)'));
      else if (e.killed) reject(new Error(`redis-benchmark did not finish within ${timeoutMs / 1000} s`));
      else reject(new Error(`redis-benchmark failed: ${(err || out || e.message).trim()}`));
    });
  });
  const rates = parseRedisBenchmarkCsv(stdout);
  const setRps = rates.get('SET');
  const getRps = rates.get('GET');
  if (setRps === undefined || getRps === undefined) throw new Error(`redis-benchmark printed no SET and GET rates:\n${stdout.trim()}`);
  return { valueBytes, requests, setRps, getRps, setGBps: (setRps * valueBytes) / 1e9, getGBps: (getRps * valueBytes) / 1e9 };
}

function checkReachable(host: string, port: number, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(`cannot reach Redis at ${host}:${port} for redis-benchmark: ${why}`));
    };
    socket.setTimeout(timeoutMs, () => fail(`no connection within ${timeoutMs} ms`));
    socket.once('error', (e) => fail(e.message));
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
  });
}
