// Percentiles of a load test, as JSON and as a Markdown table.
import type { RequestResult } from './client.js';

export interface Percentiles {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadReport {
  url: string;
  model: string;
  mode: string;
  requests: number;
  succeeded: number;
  failed: number;
  errors: Record<string, number>;
  durationS: number;
  requestThroughput: number;
  outputTokenThroughput: number;
  totalTokenThroughput: number;
  promptTokens: number;
  completionTokens: number;
  ttftMs: Percentiles;
  tbtMs: Percentiles;
  e2eMs: Percentiles;
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const xs = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  const at = (p: number) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))]!;
  const round = (x: number) => Math.round(x * 100) / 100;
  return { mean: round(xs.reduce((a, b) => a + b, 0) / xs.length), p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(xs.at(-1)!) };
}

/** The group a failed request is counted in: its HTTP status and message, or what broke the connection. */
export function errorCause(r: RequestResult): string {
  const what = r.error ?? 'no message';
  return r.status === 0 ? `no response: ${what}` : `HTTP ${r.status}: ${what}`;
}

export function buildReport(meta: { url: string; model: string; mode: string }, results: RequestResult[], durationS: number): LoadReport {
  const ok = results.filter((r) => r.ok);
  const errors: Record<string, number> = {};
  for (const r of results) {
    if (r.ok) continue;
    const cause = errorCause(r);
    errors[cause] = (errors[cause] ?? 0) + 1;
  }
  const promptTokens = ok.reduce((n, r) => n + r.promptTokens, 0);
  const completionTokens = ok.reduce((n, r) => n + r.completionTokens, 0);
  const per = (x: number) => Math.round((x / durationS) * 100) / 100;
  return {
    ...meta,
    requests: results.length,
    succeeded: ok.length,
    failed: results.length - ok.length,
    errors,
    durationS: Math.round(durationS * 1000) / 1000,
    requestThroughput: per(ok.length),
    outputTokenThroughput: per(completionTokens),
    totalTokenThroughput: per(promptTokens + completionTokens),
    promptTokens,
    completionTokens,
    ttftMs: percentiles(ok.flatMap((r) => (r.ttftMs === undefined ? [] : [r.ttftMs]))),
    tbtMs: percentiles(ok.flatMap((r) => r.tbtMs)),
    e2eMs: percentiles(ok.map((r) => r.e2eMs)),
  };
}

export function markdownReport(r: LoadReport): string {
  const row = (name: string, p: Percentiles) => `| ${name} | ${p.mean} | ${p.p50} | ${p.p90} | ${p.p99} | ${p.max} |`;
  return [
    `## vserve bench serve: ${r.model} at ${r.url}`,
    '',
    `${r.mode}; ${r.succeeded}/${r.requests} requests succeeded in ${r.durationS} s.`,
    '',
    ...(r.failed ? ['Failed requests by cause:', '', ...Object.entries(r.errors).sort((a, b) => b[1] - a[1]).map(([cause, n]) => `- ${n} x ${cause}`), ''] : []),
    `Throughput: ${r.requestThroughput} req/s, ${r.outputTokenThroughput} output tok/s, ${r.totalTokenThroughput} total tok/s ` +
      `(${r.promptTokens} prompt + ${r.completionTokens} generated tokens).`,
    '',
    '| latency (ms) | mean | p50 | p90 | p99 | max |',
    '|---|---|---|---|---|---|',
    row('time to first token', r.ttftMs),
    row('time between tokens', r.tbtMs),
    row('end to end', r.e2eMs),
    '',
  ].join('\n');
}
