// A vserve server over the bundled model on an ephemeral port, for the server tests.
import { Engine } from '../../src/engine/engine.js';
import type { EngineOptions } from '../../src/engine/engine-types.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { createTokenizer } from '../../src/model/tokenizer/index.js';
import type { ServingEngine } from '../../src/server/engine-like.js';
import { createServer, type ServerOptions, type VserveServer } from '../../src/server/server.js';
import { virtualUnavailable } from '../engine/engine-helpers.js';
import { bundledModel } from '../paths.js';

export const MODEL = 'stories260K';

export interface TestServer {
  url: string;
  engine: Engine;
  server: VserveServer;
  close(): Promise<void>;
}

const file = GGUFFile.open(bundledModel);
export const tokenizer = createTokenizer(file);
export const tokenTexts = { piece: (id: number) => tokenizer.tokenToPiece(id, false) };

/** The default (virtual) KV manager needs the native addon; without it the paged one stands in. */
export const kvManager = virtualUnavailable() ? 'paged' : 'virtual';

export async function startServer(
  server: Partial<Omit<ServerOptions, 'engine'>> = {},
  engineOptions: EngineOptions = {},
): Promise<TestServer> {
  const engine = await Engine.load(bundledModel, { backend: 'reference', kvManager, maxContext: 512, maxSeqs: 4, ...engineOptions });
  const s = await startWith(engine, server);
  return { ...s, engine, close: async () => { await s.close(); await engine.close(); } };
}

/** Serves any engine (a stand-in included) on 127.0.0.1, port 0. */
export async function startWith(engine: ServingEngine, server: Partial<Omit<ServerOptions, 'engine'>> = {}) {
  const vs = await createServer({ engine, tokenTexts, modelName: MODEL, ...server });
  const url = await vs.app.listen({ host: '127.0.0.1', port: 0 });
  return { url, server: vs, close: () => vs.app.close() };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Polls until check() holds (the engine frees KV on its own thread, a moment after the HTTP side). */
export async function eventually(check: () => Promise<boolean>, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
