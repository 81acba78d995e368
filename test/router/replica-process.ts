// Replicas for the router tests: `vserve serve` as child processes on free loopback ports, so that a test
// can SIGKILL one mid-request. Every child started here is killed by stopReplicas() (call it in `after`).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { bundledModel, repoRoot } from '../paths.js';

/** Small blocks (conversations of a few hundred tokens span many) and one thread each (the tests run several). */
export const REPLICA_ARGS = ['--kv-manager', 'paged', '--block-size', '16', '--threads', '1'];

export interface ReplicaProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Sends `signal` (default SIGKILL) and resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const children = new Set<ChildProcess>();

/** A port nothing listens on now (the kernel's choice for port 0, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export async function startReplica(opts: { args?: string[]; port?: number; model?: string } = {}): Promise<ReplicaProcess> {
  const port = opts.port ?? (await freePort());
  const args = [join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'serve', '-m', opts.model ?? bundledModel, '--host', '127.0.0.1', '--port', String(port), ...(opts.args ?? REPLICA_ARGS)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    children.delete(child);
    resolve();
  }));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica on port ${port} did not start within 60 s:\n${text}`)), 60_000);
    const check = () => {
      if (/OpenAI API:\s+\S+\/v1/.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`replica on port ${port} exited while starting:\n${text}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    output: () => text,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Kills every replica still running. */
export async function stopReplicas(): Promise<void> {
  await Promise.all([...children].map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  })));
}
