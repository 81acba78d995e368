// `npm run bench -- <subcommand> [options]`: the benchmark dispatcher. Each benchmark lives in its own
// module, loaded only when its subcommand runs; adding one is one line in COMMANDS.

type Command = { about: string; run: (argv: string[]) => Promise<void> };

const COMMANDS: Record<string, Command> = {
  'gen-model': { about: 'generate (or find cached) a benchmark model: --shape tinyllama-1.1b --dtype q8_0', run: async (a) => (await import('./models.js')).genModelCommand(a) },
  'arch-parity': { about: 'every architecture and weight type on a generated file: greedy tokens and first logits vs llama.cpp (--record writes the test fixtures)', run: async (a) => (await import('./arch-parity.js')).archParityCommand(a) },
  single: { about: 'single-sequence prefill/decode tok/s, vserve vs llama.cpp, against the bandwidth limit', run: async (a) => (await import('./single.js')).singleCommand(a) },
  kernels: { about: "per-op timings of vserve's native kernels on TinyLlama shapes (GB/s, GFLOP/s)", run: async (a) => (await import('./kernels.js')).kernelsCommand(a) },
  kv: { about: 'KV cache: contiguous vs paged attention, mapping cost per step, capacity of static / paged / virtual', run: async (a) => (await import('./kv.js')).kvCommand(a) },
  'prefix-agreement': { about: 'prefix cache: greedy tokens and logprobs with a cached prefix against computing it, native', run: async (a) => (await import('./prefix-agreement.js')).prefixAgreementCommand(a) },
  evict: { about: 'KV eviction: quality per policy and budget vs the full cache, long-prompt workload (sequences, throughput), score and compaction cost', run: async (a) => (await import('./evict.js')).evictCommand(a) },
  'kv-quality': { about: "lossy KV quality on the model's own texts vs the f32 cache (KL, top-1, ppl ratio, first divergence), noise floors, llama.cpp's caches", run: async (a) => (await import('./kv-quality.js')).kvQualityCommand(a) },
  soak: { about: 'hostile traffic against `vserve serve` (aborts, slow readers, bad bodies, 429s, SIGTERM): errors, KV pages, RSS slope', run: async (a) => (await import('./soak.js')).soakCommand(a) },
  prefix: { about: 'automatic prefix caching: shared system prompt (vs cache off and llama.cpp), multi-turn chat, KV memory, overhead', run: async (a) => (await import('./prefix.js')).prefixCommand(a) },
  rag: { about: 'RAG chunk reuse (CacheBlend): answer KL / top-1 per recompute share on the bundled model, TTFT and throughput of 6 x 512-token chunks vs full prefill and prefix caching', run: async (a) => (await import('./rag.js')).ragCommand(a) },
  cluster: { about: 'scale-out: a 2K-token prefix from Redis vs recomputed, prefix-aware routing vs round-robin over 2 replicas, Redis tier vs redis-benchmark', run: async (a) => (await import('./cluster.js')).clusterCommand(a) },
  constrained: { about: 'constrained decoding: the response_format mask per step at a 32K vocabulary, and decoding under formats vs freely, vserve and llama.cpp (GBNF)', run: async (a) => (await import('./constrained.js')).constrainedCommand(a) },
  engine: { about: 'serving engine under Poisson load: throughput, TTFT/TBT p50/p99 per scheduler and KV manager; prepacking', run: async (a) => (await import('./engine.js')).engineCommand(a) },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.about}`);
  return `usage: npm run bench -- <subcommand> [options]\n\n${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`unknown benchmark "${name}"\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  await command.run(rest);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  if (process.env.VSERVE_DEBUG) console.error(e);
  process.exitCode = 1;
});
