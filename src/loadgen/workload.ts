// The requests a load test sends: prompt and output lengths drawn from mixes, a share of prompts that
// start with one common prefix (a system prompt), and arrival times (Poisson) or none (fixed concurrency).

export interface WorkloadOptions {
  requests: number;
  /** Prompt lengths in words, drawn uniformly (about one token each on small vocabularies). */
  promptLens: number[];
  /** max_tokens values, drawn uniformly. */
  outputLens: number[];
  /** Fraction of requests whose prompt starts with the shared prefix. */
  sharedPrefixRatio: number;
  prefixWords: number;
  /** Requests per second for Poisson arrivals; undefined for fixed concurrency. */
  rate?: number;
  seed: number;
}

export interface PlannedRequest {
  index: number;
  prompt: string;
  maxTokens: number;
  shared: boolean;
  /** Milliseconds after the start at which to send it (Poisson arrivals only). */
  at?: number;
}

const WORDS = 'once upon a time there was a little girl named lily she loved to play outside in the park with her big red ball and her friend tom who had a dog'.split(' ');

/** mulberry32: a small seeded generator, so a workload can be repeated exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function planWorkload(o: WorkloadOptions): PlannedRequest[] {
  const rand = seededRandom(o.seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const words = (n: number) => Array.from({ length: n }, () => pick(WORDS)).join(' ');
  const prefix = words(o.prefixWords);
  let t = 0;
  return Array.from({ length: o.requests }, (_, index) => {
    const shared = rand() < o.sharedPrefixRatio;
    const len = pick(o.promptLens);
    const prompt = shared ? `${prefix} ${words(Math.max(1, len - o.prefixWords))}` : words(len);
    // Exponential gaps between arrivals make a Poisson process.
    if (o.rate !== undefined) t += (-Math.log(1 - rand()) / o.rate) * 1000;
    return { index, prompt, maxTokens: pick(o.outputLens), shared, at: o.rate !== undefined ? t : undefined };
  });
}
