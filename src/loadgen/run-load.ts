// Drives a workload against a server: Poisson arrivals (each request sent at its time, however many are
// open) or a fixed number of clients, each sending its next request when the last one ends.
import { streamCompletion, type RequestResult, type Target } from './client.js';

/** What runLoad sends: a prompt (text or token ids), its output length, and its arrival time (ms after the start) if any. */
export interface LoadRequest {
  index: number;
  prompt: string | readonly number[];
  maxTokens: number;
  at?: number;
}

export async function runLoad(target: Target, plan: readonly LoadRequest[], concurrency: number): Promise<{ results: RequestResult[]; durationS: number }> {
  const start = performance.now();
  const results: RequestResult[] = [];
  const send = async (r: LoadRequest) => results.push(await streamCompletion(target, r.index, r.prompt, r.maxTokens));
  if (plan.length > 0 && plan[0]!.at !== undefined) {
    await Promise.all(
      plan.map(async (r) => {
        const wait = r.at! - (performance.now() - start);
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await send(r);
      }),
    );
  } else {
    let next = 0;
    const client = async () => {
      while (next < plan.length) await send(plan[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, plan.length) }, client));
  }
  results.sort((a, b) => a.index - b.index);
  return { results, durationS: (performance.now() - start) / 1000 };
}
