// vserve serve: the OpenAI-compatible HTTP server with the web playground, over one Engine.
import { loadProgress } from './load-progress.js';
import { basename } from 'node:path';
import { Engine } from '../engine/engine.js';
import { resolveEngineOptions } from '../engine/engine-setup.js';
import type { AdmissionOrder, EngineOptions, KVManagerKind, SchedulerKind } from '../engine/engine-types.js';
import { kvBytesPerToken } from '../engine/managed-kv.js';
import { GGUFFile } from '../model/gguf/reader.js';
import { readModelConfig } from '../model/architectures/index.js';
import { createTokenizer } from '../model/tokenizer/index.js';
import { createServer } from '../server/server.js';
import { parseCliArgs } from './args.js';
import { CliError, intOption, numberOption } from './cli-error.js';
import { sumOrderOption, threadsOption } from './compute-flags.js';
import { MODEL_OPTION, modelArgument } from './model-arg.js';
import { logRequests } from './request-log.js';
import { formatSize, parseSize } from './sizes.js';
import { KV_POLICY_OPTIONS, kvBudgetOption, kvPolicyHelp, kvPolicyOption } from './kv-policy-flags.js';
import { KV_TIER_OPTIONS, kvTierHelp, kvTierOptions } from './kv-tier-flags.js';
import { BLEND_OPTIONS, blendHelp, blendOptions } from './blend-flags.js';
import { KV_TYPE_OPTIONS, kvResidualOption, kvRotateOption, kvTypeHelp, kvTypeOption } from './kv-type-flags.js';
import { kvTypeLabel } from '../kv/format.js';
import { DEFAULT_CONTEXT_CAP } from '../config/engine-config.js';
import { choiceHelp, helpDefault } from './engine-defaults.js';

/** A laptop-sized default KV budget (the pool never grows past it; pages are used as tokens arrive). */
const DEFAULT_KV_MEMORY = 2 ** 30;

/** `vserve serve --help`: the engine's defaults and choices come from its configuration schema. */
export const SERVE_HELP = `usage: vserve serve [-m] [FILE] [options]
  -m, --model FILE              GGUF model (also as a bare FILE; default: the bundled stories260K)
      --host HOST               address to listen on (default 127.0.0.1)
      --port N                  port (default 8080; 0 = any free port)
      --served-model-name NAME  the model id clients use (default: the file name without .gguf)
      --api-key KEY             require "Authorization: Bearer KEY" on /v1/* and the KV feed
                                (/api/kv, /api/kv/stream; the feed also takes ?api_key=KEY)
      --metrics-key KEY         require "Authorization: Bearer KEY" on /metrics (default: open)
      --cors-origin ORIGIN      let browser pages from ORIGIN (or *) call the API (default: no CORS)
      --kv-manager KIND         ${choiceHelp('kvManager')}
      --kv-memory SIZE          KV pool budget, e.g. 1GiB (default: all slots at full context, at most ${formatSize(DEFAULT_KV_MEMORY)})
      --page-size SIZE          virtual manager page size, e.g. 64KiB (default: 64KiB; larger for
                                big budgets, to stay under vm.max_map_count)
      --block-size N            paged manager tokens per block (default 16, or the KV format's group
                                if larger)
${kvTypeHelp(32)}
${kvPolicyHelp(32)}
      --scheduler KIND          ${choiceHelp('scheduler')}
      --no-prefix-cache         compute every prompt in full (the prefix cache is on by default)
${kvTierHelp(32)}
      --admission ORDER         ${choiceHelp('admissionOrder')}: longest cached prefix first, or first come
${blendHelp(32)}
      --max-batch-tokens N      token budget per step (default ${helpDefault('maxBatchTokens')})
      --max-seqs N              sequences running at once (default ${helpDefault('maxSeqs')})
      --max-context N           context per sequence (default: the model's, at most ${DEFAULT_CONTEXT_CAP})
      --max-inflight N          requests held (running + waiting) before 429 (default 8 x max-seqs)
      --max-connections N       connections open at once; more are closed on arrival (default 1024)
      --body-timeout S          seconds for a request body to arrive before 408 (default 30)
      --drain-timeout S         on SIGTERM/SIGINT, seconds to let requests in flight finish before
                                ending them with an error (default 30)
      --threads N               compute threads (default: physical cores)
      --sum-order ORDER         how prefill matmuls add up: ${choiceHelp('sumOrder')}
                                (llama.cpp: its results to the bit, prefill matmuls 2-3x slower)
      --log                     print one line per request (time, client, method, path, status, ms)`;

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCliArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...MODEL_OPTION,
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      'served-model-name': { type: 'string' },
      'api-key': { type: 'string' },
      'metrics-key': { type: 'string' },
      'cors-origin': { type: 'string' },
      'max-connections': { type: 'string' },
      'body-timeout': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'kv-manager': { type: 'string' },
      'kv-memory': { type: 'string' },
      'page-size': { type: 'string' },
      'block-size': { type: 'string' },
      ...KV_TYPE_OPTIONS,
      ...KV_POLICY_OPTIONS,
      ...KV_TIER_OPTIONS,
      scheduler: { type: 'string' },
      'no-prefix-cache': { type: 'boolean' },
      admission: { type: 'string' },
      ...BLEND_OPTIONS,
      'max-batch-tokens': { type: 'string' },
      'max-seqs': { type: 'string' },
      'max-context': { type: 'string' },
      'max-inflight': { type: 'string' },
      threads: { type: 'string' },
      'sum-order': { type: 'string' },
      log: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(SERVE_HELP);
    return;
  }
  const port = intOption('port', values.port, 8080, 0);
  if (port > 65535) throw new CliError(`--port must be at most 65535, got ${port}`);
  // Ranges are the engine's (its errors name the flags); the CLI only parses integers.
  const int = (name: keyof typeof values) => (values[name] === undefined ? undefined : intOption(name, values[name] as string, 0, -Infinity));
  const modelPath = modelArgument('serve', values.model, positionals);
  const seconds = (name: 'body-timeout' | 'drain-timeout') => {
    const s = numberOption(name, values[name]);
    if (s !== undefined && !(s > 0)) throw new CliError(`--${name} must be a number of seconds > 0, got "${values[name]}"`);
    return s === undefined ? undefined : s * 1000;
  };
  const drainTimeoutMs = seconds('drain-timeout') ?? 30_000;

  // The tokenizer on this thread names tokens in logprobs; the config sizes the default KV budget.
  const file = GGUFFile.open(modelPath);
  try {
    const tokenizer = createTokenizer(file);
    const config = readModelConfig(file);
    const options: EngineOptions = {
      kvManager: values['kv-manager'] as KVManagerKind | undefined,
      scheduler: values.scheduler as SchedulerKind | undefined,
      pageSize: values['page-size'] === undefined ? undefined : parseSize('page-size', values['page-size']),
      blockSize: int('block-size'),
      kvType: kvTypeOption(values),
      kvResidual: kvResidualOption(values),
      kvRotate: kvRotateOption(values),
      kvPolicy: kvPolicyOption(values),
      kvBudget: kvBudgetOption(values),
      prefixCache: !values['no-prefix-cache'],
      ...kvTierOptions(values),
      admissionOrder: values.admission as AdmissionOrder | undefined,
      ...blendOptions(values),
      maxSeqs: int('max-seqs'),
      maxContext: int('max-context'),
      maxBatchTokens: int('max-batch-tokens'),
      threads: threadsOption(values.threads),
      sumOrder: sumOrderOption(values['sum-order']),
    };
    // The engine's own defaults (resolved once, there) size the default KV budget.
    const { maxSeqs, maxContext, kvType } = resolveEngineOptions(options, config.contextLength);
    const fullBudget = kvBytesPerToken({ nLayers: config.nLayers, kvHeads: config.nKVHeads, headDim: config.headDim, maxSlots: maxSeqs, maxContext, kvType }) * maxSeqs * maxContext;
    options.kvMemory = values['kv-memory'] === undefined ? Math.min(fullBudget, DEFAULT_KV_MEMORY) : parseSize('kv-memory', values['kv-memory']);
    const engine = await Engine.load(modelPath, options, { onProgress: loadProgress(modelPath) });
    const modelName = values['served-model-name'] ?? basename(modelPath).replace(/\.gguf$/i, '');
    const server = await createServer({
      engine,
      // Logprob token strings are generated text: control tokens are empty, as in llama-server.
      tokenTexts: { piece: (id) => tokenizer.tokenToPiece(id, false) },
      modelName,
      apiKey: values['api-key'],
      metricsKey: values['metrics-key'],
      corsOrigin: values['cors-origin'],
      maxInflight: values['max-inflight'] === undefined ? undefined : intOption('max-inflight', values['max-inflight'], 0, 1),
      maxConnections: values['max-connections'] === undefined ? undefined : intOption('max-connections', values['max-connections'], 0, 1),
      bodyTimeoutMs: seconds('body-timeout'),
      drainTimeoutMs,
    });
    if (values.log) logRequests(server.app);
    const address = await server.app.listen({ host: values.host!, port }).catch(async (e: NodeJS.ErrnoException) => {
      await engine.close();
      throw new CliError(`cannot listen on ${values.host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use (try --port)' : e.message}`);
    });
    const url = address.replace('://[::1]', '://localhost');
    const stats = await engine.stats();
    // The key as given, so the sample works when pasted into the same shell.
    const auth = values['api-key'] ? ` -H 'Authorization: Bearer ${values['api-key'].replaceAll("'", `'\\''`)}'` : '';
    console.log(
      [
        `vserve: serving ${modelName} (${engine.info.arch}, ${engine.info.kvManager} KV ${formatSize(stats.kv.totalPages * stats.kv.pageBytes)} in ${formatSize(stats.kv.pageBytes)} pages, ` +
          `${kvTypeLabel(engine.info.kvType)} cache (${formatSize(stats.kv.bytesPerToken)} a token), ` +
          `${engine.info.maxSeqs} seqs x ${engine.info.maxContext} tokens, ${engine.info.scheduler} scheduler, prefix cache ${engine.info.prefixCache ? 'on' : 'off'}, ` +
          `${engine.info.isa ?? engine.info.backend} kernels on ${engine.info.threads ?? 1} threads; loaded in ${(engine.info.loadMs / 1000).toFixed(1)} s)`,
        `  playground + live KV map: ${url}/`,
        `  OpenAI API:               ${url}/v1   (metrics: ${url}/metrics)`,
        `  try: curl ${url}/v1/chat/completions -H "Content-Type: application/json"${auth} \\`,
        `         -d '{"model": "${modelName}", "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 64}'`,
      ].join('\n'),
    );

    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) {
        console.error(`vserve: ${signal} again, exiting now`);
        process.exit(1);
      }
      stopping = true;
      console.log(
        `vserve: ${signal}: no new requests; closing idle connections (${server.connections.open} open) ` +
          `and giving the ${server.admission.count} requests in flight up to ${drainTimeoutMs / 1000} s`,
      );
      await server.drain();
      await engine.close();
      file.close();
      console.log('vserve: stopped');
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  } catch (e) {
    file.close();
    throw e;
  }
}
