// `npm run soak`: hours of hostile traffic in minutes. Starts `vserve serve` on the bundled model and
// drives it over loopback with a seeded mix of whole and streamed requests, client aborts, slow
// readers and invalid bodies, at a concurrency above --max-inflight so 429s happen too; then opens a
// few long streams and sends SIGTERM. Reports unexpected errors, pages in use and RSS at start and end,
// the RSS slope after warm-up, what became of every accepted request, and how long the exit took.
// Bounded by --requests and --max-minutes.
import { Rng } from '../src/engine/rng.js';
import { BenchArgs } from './args.js';
import { markdownTable, writeReport } from './report.js';
import { pickKind, soakRequest, type SoakKind, type SoakOutcome, type SoakResult } from './soak-client.js';
import { SoakServer } from './soak-server.js';

export interface SoakOptions {
  requests: number;
  concurrency: number;
  maxSeqs: number;
  maxInflight: number;
  drainTimeoutS: number;
  maxMinutes: number;
  seed: number;
  /** Long streams open when SIGTERM is sent. */
  finalStreams: number;
}

export const SOAK_DEFAULTS: SoakOptions = { requests: 10_000, concurrency: 14, maxSeqs: 4, maxInflight: 12, drainTimeoutS: 1, maxMinutes: 30, seed: 19, finalStreams: 12 };

export interface RssSample {
  minutes: number;
  requests: number;
  mib: number;
}

export interface SoakReport {
  options: SoakOptions;
  requestsSent: number;
  minutes: number;
  outcomes: Record<SoakOutcome, number>;
  byKind: Record<string, Record<string, number>>;
  statuses: Record<string, number>;
  unexpected: SoakResult[];
  pages: { start: Awaited<ReturnType<SoakServer['pages']>>; end: Awaited<ReturnType<SoakServer['pages']>> };
  rss: { startMiB: number; endMiB: number; slopeMiBPerMin: number; slopeLast80MiBPerMin: number; samples: RssSample[] };
  serverCounters: Record<string, number>;
  drain: { outcomes: Record<SoakOutcome, number>; exitCode: number | null; exitMs: number; withinDrainTimeout: boolean; refusedAfterSigterm: boolean };
}

const MiB = 1024 * 1024;

/** Least-squares slope of y over x. */
function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

/**
 * RSS growth in MiB/min after warm-up. V8 grows its heap towards a steady size over the first minute or
 * so (the JIT, the old generation, fastify's caches), so warm-up is the first half of the requests; the
 * slope over the last 80% is reported too, to show how much warm-up is in it.
 */
export function rssSlopes(samples: readonly RssSample[], requests: number): { slopeMiBPerMin: number; slopeLast80MiBPerMin: number } {
  const after = (share: number) => slope(samples.filter((s) => s.requests >= requests * share).map((s) => ({ x: s.minutes, y: s.mib })));
  return { slopeMiBPerMin: after(0.5), slopeLast80MiBPerMin: after(0.2) };
}

function tally(results: readonly SoakResult[]): Record<SoakOutcome, number> {
  const t: Record<SoakOutcome, number> = { finished: 0, drained: 0, rejected: 0, aborted: 0, unexpected: 0 };
  for (const r of results) t[r.outcome]++;
  return t;
}

export async function runSoak(o: SoakOptions, onProgress?: (done: number) => void): Promise<SoakReport> {
  const server = await SoakServer.start({ maxSeqs: o.maxSeqs, maxInflight: o.maxInflight, drainTimeoutS: o.drainTimeoutS });
  try {
    const rng = new Rng(o.seed);
    const t0 = performance.now();
    const minutes = () => (performance.now() - t0) / 60_000;
    const startPages = await server.pages();
    const samples: RssSample[] = [{ minutes: 0, requests: 0, mib: server.rss() / MiB }];
    const sampleEvery = Math.max(1, Math.floor(o.requests / 100));
    const results: SoakResult[] = [];
    let sent = 0;

    const worker = async () => {
      while (sent < o.requests && minutes() < o.maxMinutes) {
        sent++;
        const kind = pickKind(rng);
        const result = await soakRequest(server.url, kind, rng);
        results.push(result);
        // A client told 429 backs off a little rather than hammering (Retry-After would idle the soak).
        if (result.status === 429) await new Promise((r) => setTimeout(r, 100 + (rng.nextUint32() % 100)));
        if (results.length % sampleEvery === 0) {
          samples.push({ minutes: minutes(), requests: results.length, mib: server.rss() / MiB });
          onProgress?.(results.length);
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const soakMinutes = minutes();

    // The engine frees KV on its own thread a moment after the last response.
    let endPages = await server.pages();
    for (let i = 0; i < 100 && (endPages.inUse > 0 || endPages.running + endPages.waiting > 0); i++) {
      await new Promise((r) => setTimeout(r, 20));
      endPages = await server.pages();
    }
    const endMiB = server.rss() / MiB;
    samples.push({ minutes: soakMinutes, requests: results.length, mib: endMiB });
    const counters = await server.counters();

    const drain = await drainPhase(server, o, rng);
    const report: SoakReport = {
      options: o,
      requestsSent: results.length,
      minutes: soakMinutes,
      outcomes: tally(results),
      byKind: byKind(results),
      statuses: countBy(results.map((r) => String(r.status ?? 'none'))),
      unexpected: results.filter((r) => r.outcome === 'unexpected').slice(0, 50),
      pages: { start: startPages, end: endPages },
      rss: { startMiB: samples[0]!.mib, endMiB, ...rssSlopes(samples, results.length), samples },
      serverCounters: counters,
      drain,
    };
    return report;
  } finally {
    server.kill();
  }
}

/** Opens long streams, sends SIGTERM once each has its first chunk, and sees what becomes of them. */
async function drainPhase(server: SoakServer, o: SoakOptions, rng: Rng): Promise<SoakReport['drain']> {
  const started: Promise<void>[] = [];
  const finals: Promise<SoakResult>[] = [];
  for (let i = 0; i < o.finalStreams; i++) {
    let firstChunk!: () => void;
    started.push(new Promise<void>((r) => (firstChunk = r)));
    finals.push(longStream(server.url, firstChunk, rng));
  }
  await Promise.all(started);
  const exit = server.terminate();
  // Once the server has seen SIGTERM (/health says so, or the port is closed), a new request is refused.
  while (await fetch(`${server.url}/health`).then((r) => r.status === 200, () => false)) await new Promise((r) => setTimeout(r, 5));
  const late = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"x","max_tokens":1}' })
    .then((r) => r.status === 503, () => true);
  const results = await Promise.all(finals);
  const { code, ms } = await exit;
  return { outcomes: tally(results), exitCode: code, exitMs: ms, withinDrainTimeout: ms <= o.drainTimeoutS * 1000 + 1000, refusedAfterSigterm: late };
}

/** A stream long enough to be running at SIGTERM; `onOpen` fires once its response has begun (or failed). */
async function longStream(url: string, onOpen: () => void, rng: Rng): Promise<SoakResult> {
  const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 480, temperature: 0.8, seed: rng.nextUint32() % 1000, stream: true });
  let res: Response;
  try {
    res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  } catch (e) {
    return { kind: 'stream', outcome: 'unexpected', detail: String(e) };
  } finally {
    onOpen();
  }
  if (res.status === 429 || res.status === 503) return { kind: 'stream', outcome: 'rejected', status: res.status };
  const text = await res.text().catch((e: unknown) => `<read failed: ${String(e)}>`);
  const complete = text.trimEnd().endsWith('data: [DONE]');
  if (complete && /"code":"server_shutdown"/.test(text)) return { kind: 'stream', outcome: 'drained', status: 200 };
  if (complete && /"finish_reason":"(stop|length)"/.test(text)) return { kind: 'stream', outcome: 'finished', status: 200 };
  return { kind: 'stream', outcome: 'unexpected', status: res.status, detail: text.slice(-200) };
}

function countBy(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

function byKind(results: readonly SoakResult[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const r of results) {
    const k = (out[r.kind as SoakKind] ??= {});
    k[r.outcome] = (k[r.outcome] ?? 0) + 1;
  }
  return out;
}

/** The invariants a soak must keep; empty when it kept them all. */
export function soakViolations(r: SoakReport): string[] {
  const v: string[] = [];
  if (r.outcomes.unexpected > 0) v.push(`${r.outcomes.unexpected} unexpected results, e.g. ${JSON.stringify(r.unexpected[0])}`);
  if (r.drain.outcomes.unexpected > 0) v.push(`${r.drain.outcomes.unexpected} unexpected results in the drain`);
  if (r.pages.end.inUse !== 0) v.push(`${r.pages.end.inUse} KV pages still held by requests at the end`);
  if (r.pages.end.running + r.pages.end.waiting !== 0) v.push(`${r.pages.end.running} running / ${r.pages.end.waiting} waiting at the end`);
  if ((r.serverCounters['request_failure_total{server_error}'] ?? 0) > 0) v.push('the server counted server errors');
  if (r.drain.exitCode !== 0) v.push(`exit code ${r.drain.exitCode} after SIGTERM`);
  if (!r.drain.refusedAfterSigterm) v.push('a request after SIGTERM was not refused');
  return v;
}

function markdown(r: SoakReport, violations: readonly string[]): string {
  const o = r.outcomes;
  const rows = Object.entries(r.byKind).map(([k, c]) => [k, c.finished ?? 0, c.rejected ?? 0, c.aborted ?? 0, c.drained ?? 0, c.unexpected ?? 0]);
  return [
    `# Soak: ${r.requestsSent} requests in ${r.minutes.toFixed(1)} min (concurrency ${r.options.concurrency}, --max-seqs ${r.options.maxSeqs}, --max-inflight ${r.options.maxInflight}, seed ${r.options.seed})`,
    '',
    `**${violations.length === 0 ? 'All invariants held' : `Violations: ${violations.join('; ')}`}.**`,
    '',
    `Outcomes: ${o.finished} finished, ${o.rejected} rejected as they should be (statuses ${JSON.stringify(r.statuses)}), ${o.aborted} aborted by the client, ${o.unexpected} unexpected.`,
    '',
    markdownTable(['kind', 'finished', 'rejected', 'aborted', 'drained', 'unexpected'], rows),
    '',
    `KV pages held by requests: ${r.pages.start.inUse} at start, ${r.pages.end.inUse} at end (pool pages used, idle slots' kept pages included: ${r.pages.start.poolUsed} -> ${r.pages.end.poolUsed}).`,
    `Server RSS: ${r.rss.startMiB.toFixed(1)} MiB at start, ${r.rss.endMiB.toFixed(1)} MiB at end; slope after warm-up (last 50% of requests) ${r.rss.slopeMiBPerMin.toFixed(3)} MiB/min (last 80%: ${r.rss.slopeLast80MiBPerMin.toFixed(3)}).`,
    `SIGTERM with ${r.options.finalStreams} long streams open: ${r.drain.outcomes.finished} finished, ${r.drain.outcomes.drained} ended by the drain with a server_shutdown error event, ` +
      `${r.drain.outcomes.rejected} refused, ${r.drain.outcomes.unexpected} unexpected; exit code ${r.drain.exitCode} after ${(r.drain.exitMs / 1000).toFixed(2)} s ` +
      `(drain timeout ${r.options.drainTimeoutS} s${r.drain.withinDrainTimeout ? ', within it' : ', PAST IT'}); a request after SIGTERM ${r.drain.refusedAfterSigterm ? 'was refused' : 'WAS SERVED'}.`,
    `Server counters: ${JSON.stringify(r.serverCounters)}`,
    '',
  ].join('\n');
}

export async function soakCommand(argv: string[]): Promise<void> {
  const a = new BenchArgs(argv);
  const d = SOAK_DEFAULTS;
  const o: SoakOptions = {
    requests: a.int('requests', d.requests), concurrency: a.int('concurrency', d.concurrency), maxSeqs: a.int('max-seqs', d.maxSeqs),
    maxInflight: a.int('max-inflight', d.maxInflight), drainTimeoutS: a.int('drain-timeout', d.drainTimeoutS), maxMinutes: a.int('max-minutes', d.maxMinutes),
    seed: a.int('seed', d.seed), finalStreams: a.int('final-streams', d.finalStreams),
  };
  const report = await runSoak(o, (n) => {
    if (n % Math.max(1, Math.floor(o.requests / 20)) === 0) process.stderr.write(`soak: ${n}/${o.requests}\n`);
  });
  const violations = soakViolations(report);
  writeReport('soak', { ...report, violations }, markdown(report, violations));
  if (violations.length > 0) process.exitCode = 1;
}
