// The Redis tier of the cluster benchmark's part 3 in a process of its own, started under the node flags
// vserve's commands run under (src/cli/node-flags.ts), so that its puts and gets are timed as a replica
// makes them; the benchmark's own process runs under node's defaults. The child loads the model first, as
// a replica's engine thread holds it beside its tier, so that the JS heap the collector walks is a
// replica's. Both sides of the exchange are here:
// the benchmark calls TierProcess, and the child (this file run with CHILD_ARG) answers over node's IPC.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { createRedisTier } from '../src/kv/tiers/store-address.js';
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { fillTier, tierThroughput, type TierThroughput } from './tier-throughput.js';

const CHILD_ARG = '--vserve-bench-tier-process';

type Request =
  | { id: number; op: 'ready' }
  | { id: number; op: 'fill'; valueBytes: number; count: number; putsInFlight: number }
  | { id: number; op: 'measure'; valueBytes: number; count: number; keysPerGet: number; putsInFlight: number };
type Reply = { id: number; result?: TierThroughput; error?: string };
type Waiter = { resolve: (r: TierThroughput | undefined) => void; reject: (e: Error) => void };

export class TierProcess {
  private nextId = 0;
  private readonly waiting = new Map<number, Waiter>();
  private exitError: Error | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (m: Reply) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(`tier process: ${m.error}`));
      else w?.resolve(m.result);
    });
    child.on('exit', (code, signal) => {
      this.exitError = new Error(`tier process exited (${signal ?? `code ${code}`})`);
      for (const w of this.waiting.values()) w.reject(this.exitError);
      this.waiting.clear();
    });
  }

  /** A child holding the model at `modelPath` and a Redis tier on `address`, once that Redis answers it. */
  static async start(address: string, commandTimeoutMs: number, modelPath: string): Promise<TierProcess> {
    const child = fork(fileURLToPath(import.meta.url), [CHILD_ARG, address, String(commandTimeoutMs), modelPath], { execArgv: [...NODE_FLAGS], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const p = new TierProcess(child);
    try {
      await p.send({ id: 0, op: 'ready' });
    } catch (e) {
      await p.close();
      throw e;
    }
    return p;
  }

  /** fillTier in the child. */
  async fill(valueBytes: number, count: number, putsInFlight: number): Promise<void> {
    await this.send({ id: ++this.nextId, op: 'fill', valueBytes, count, putsInFlight });
  }

  /** tierThroughput in the child. */
  async measure(valueBytes: number, count: number, keysPerGet: number, putsInFlight: number): Promise<TierThroughput> {
    const r = await this.send({ id: ++this.nextId, op: 'measure', valueBytes, count, keysPerGet, putsInFlight });
    if (!r) throw new Error('tier process: a measurement came back empty');
    return r;
  }

  /** Ends the child, which closes its tier first; kills it if that takes more than `graceMs`. */
  async close(graceMs = 15_000): Promise<void> {
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private send(request: Request): Promise<TierThroughput | undefined> {
    if (this.exitError) return Promise.reject(this.exitError);
    return new Promise((resolve, reject) => {
      this.waiting.set(request.id, { resolve, reject });
      this.child.send(request);
    });
  }
}

/** Held for the child's life: what a replica's engine thread holds beside its tier. */
let model: LoadedModel | undefined;

async function runChild(address: string, commandTimeoutMs: number, modelPath: string): Promise<void> {
  model = loadModel(modelPath, { threads: 1 });
  const tier = createRedisTier(address, { commandTimeoutMs });
  const reply = (m: Reply) => process.send!(m);
  const up = tier.whenUp(5000);
  process.on('message', (r: Request) => {
    const work = (async () => {
      if (!(await up)) throw new Error(`Redis at ${address} did not answer within 5 s`);
      if (r.op === 'ready') return undefined;
      if (r.op === 'fill') return void (await fillTier(tier, r.valueBytes, r.count, r.putsInFlight));
      return tierThroughput(tier, r.valueBytes, r.count, r.keysPerGet, r.putsInFlight);
    })();
    work.then((result) => reply({ id: r.id, result }), (e: unknown) => reply({ id: r.id, error: e instanceof Error ? e.message : String(e) }));
  });
  // The benchmark hangs up when it is done with the tier (or has died).
  process.on('disconnect', () => void tier.close().finally(() => process.exit(0)));
}

if (process.argv[2] === CHILD_ARG) await runChild(process.argv[3]!, Number(process.argv[4]), process.argv[5]!);
