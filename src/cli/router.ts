// vserve router: one OpenAI-compatible endpoint in front of several `vserve serve` replicas, sending each
// request to the replica that holds the longest part of its prompt in its prefix cache, weighed against
// how busy each replica is (see src/router/).
import { CliError, choiceOption, intOption, numberOption } from './cli-error.js';
import { parseCliArgs } from './args.js';
import { MODEL_OPTION, modelArgument } from './model-arg.js';
import { logRequests } from './request-log.js';
import { createRouter, replicaUrls } from '../router/router-server.js';
import { DEFAULT_OVERLAP_WEIGHT, POLICY_NAMES, type PolicyName } from '../router/routing-policy.js';

const HELP = `usage: vserve router --replica URL --replica URL ... [-m] [FILE] [options]
      --replica URL             a vserve serve replica's base URL, e.g. http://10.0.0.5:8080 (repeat
                                for each replica; all must serve the same model with the same KV
                                type and block size)
  -m, --model FILE              the GGUF file the replicas serve: the router reads only its tokenizer
                                and chat template, to know each request's prompt tokens (default: the
                                bundled stories260K)
      --policy NAME             prefix (default: the replica holding the longest cached prefix,
                                weighed against its load), round-robin or least-loaded
      --overlap-weight W        prefix policy: cost = W x prompt blocks the replica must compute +
                                blocks of the prompts it is working on; lowest wins (default ${DEFAULT_OVERLAP_WEIGHT})
      --blend-separator TEXT    the replicas' --blend-separator, if they were given one
      --host HOST               address to listen on (default 127.0.0.1)
      --port N                  port (default 8000; 0 = any free port)
      --api-key KEY             require "Authorization: Bearer KEY" on /v1/*
      --metrics-key KEY         require "Authorization: Bearer KEY" on /metrics (default: open)
      --replica-api-key KEY     the key the replicas were started with (their --api-key)
      --health-interval S       seconds between /health checks of each replica (default 1)
      --log                     print one line per request (time, client, method, path, status, ms)`;

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCliArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...MODEL_OPTION,
      replica: { type: 'string', multiple: true },
      policy: { type: 'string' },
      'overlap-weight': { type: 'string' },
      'blend-separator': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8000' },
      'api-key': { type: 'string' },
      'metrics-key': { type: 'string' },
      'replica-api-key': { type: 'string' },
      'health-interval': { type: 'string' },
      log: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const given = values.replica ?? [];
  if (given.length === 0) throw new CliError('router needs at least one --replica URL (a vserve serve, e.g. --replica http://127.0.0.1:8080)');
  let replicas: string[];
  try {
    replicas = replicaUrls(given);
  } catch (e) {
    throw new CliError(`--replica: ${(e as Error).message}`);
  }
  const port = intOption('port', values.port, 8000, 0, 65535);
  const policy = choiceOption<PolicyName>('policy', values.policy, POLICY_NAMES) ?? 'prefix';
  const overlapWeight = numberOption('overlap-weight', values['overlap-weight']);
  if (overlapWeight !== undefined && !(overlapWeight >= 0)) throw new CliError(`--overlap-weight must be a number >= 0, got "${values['overlap-weight']}"`);
  const interval = numberOption('health-interval', values['health-interval']);
  if (interval !== undefined && !(interval > 0)) throw new CliError(`--health-interval must be a number of seconds > 0, got "${values['health-interval']}"`);
  const modelPath = modelArgument('router', values.model, positionals);

  const router = await createRouter({
    replicas,
    modelPath,
    policy,
    overlapWeight,
    blendSeparator: values['blend-separator'],
    apiKey: values['api-key'],
    metricsKey: values['metrics-key'],
    replicaApiKey: values['replica-api-key'],
    healthIntervalMs: interval === undefined ? undefined : interval * 1000,
    onEvent: (line) => console.log(`vserve router: ${line}`),
  });
  if (values.log) logRequests(router.app);
  const address = await router.app.listen({ host: values.host!, port }).catch(async (e: NodeJS.ErrnoException) => {
    await router.close();
    throw new CliError(`cannot listen on ${values.host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use (try --port)' : e.message}`);
  });
  const url = address.replace('://[::1]', '://localhost');
  console.log(
    [
      `vserve router: ${policy} routing over ${replicas.length} replica${replicas.length === 1 ? '' : 's'} (${replicas.join(', ')})`,
      `  OpenAI API: ${url}/v1   (health: ${url}/health, metrics: ${url}/metrics)`,
    ].join('\n'),
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`vserve router: ${signal}: stopping`);
    await router.close();
    console.log('vserve router: stopped');
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
