// An in-process `vserve router` over replica processes, and small readers of its answers for the tests.
import { sseData } from '../../src/loadgen/sse-frames.js';
import { REPLICA_HEADER } from '../../src/router/proxy.js';
import { createRouter, type RouterOptions, type VserveRouter } from '../../src/router/router-server.js';
import { bundledModel } from '../paths.js';
import { eventually, postJson } from '../server/helpers.js';

export interface TestRouter {
  url: string;
  router: VserveRouter;
  /** The replica state changes it reported. */
  events: string[];
  close(): Promise<void>;
}

export async function startRouter(replicas: string[], opts: Partial<RouterOptions> = {}): Promise<TestRouter> {
  const events: string[] = [];
  const router = await createRouter({ replicas, modelPath: bundledModel, healthIntervalMs: 200, onEvent: (line) => events.push(line), ...opts });
  const url = await router.app.listen({ host: '127.0.0.1', port: 0 });
  return { url, router, events, close: () => router.close() };
}

/** Waits until every replica takes requests and (when `withBlocks`) its block stream has said hello. */
export async function replicasReady(r: TestRouter, withBlocks = true): Promise<void> {
  await eventually(async () => r.router.pool.replicas.every((x) => x.eligible && (!withBlocks || x.params !== undefined)), 'every replica up', 400);
}

export interface Answer {
  status: number;
  replica: string | null;
  json: any;
}

export async function post(url: string, path: string, body: unknown): Promise<Answer> {
  const r = await postJson(`${url}${path}`, body);
  return { status: r.status, replica: r.headers.get(REPLICA_HEADER), json: r.json ?? r.text };
}

/** A streamed answer: its status, replica and data payloads (parsed, '[DONE]' as a string). */
export interface StreamAnswer {
  status: number;
  replica: string | null;
  frames: unknown[];
}

/** Starts a streamed request; `first` resolves at its first data frame, `done` with everything. */
export async function openStream(url: string, path: string, body: unknown): Promise<{ status: number; replica: string | null; first: Promise<void>; done: Promise<StreamAnswer> }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...(body as object), stream: true }) });
  const replica = res.headers.get(REPLICA_HEADER);
  let firstSeen: () => void = () => {};
  const first = new Promise<void>((resolve) => (firstSeen = resolve));
  const done = (async () => {
    const frames: unknown[] = [];
    if (res.ok) {
      for await (const data of sseData(res.body!)) {
        frames.push(data === '[DONE]' ? data : JSON.parse(data));
        firstSeen();
      }
    } else {
      frames.push(await res.json());
    }
    firstSeen();
    return { status: res.status, replica, frames };
  })();
  return { status: res.status, replica, first, done };
}

/** A counter's value in a Prometheus text exposition, for the labels given (0 when absent). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([^{\s]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}
