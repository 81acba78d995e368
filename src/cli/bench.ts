// vserve bench serve: a client-side load generator for any OpenAI-compatible server. Reports TTFT,
// time between tokens and throughput percentiles as JSON and Markdown. (Engine-side benchmarks are
// `npm run bench`.)
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport, markdownReport } from '../loadgen/report.js';
import { runLoad } from '../loadgen/run-load.js';
import { planWorkload } from '../loadgen/workload.js';
import { parseCliArgs } from './args.js';
import { CliError, intOption, numberOption } from './cli-error.js';

const HELP = `usage: vserve bench serve --url URL [options]
      --url URL              the server (e.g. http://127.0.0.1:8080)
      --model NAME           model id (default: the server's first model)
      --api-key KEY          sent as "Authorization: Bearer KEY"
      --requests N           requests to send (default 50)
      --rate R               Poisson arrivals at R requests/s (default: fixed concurrency)
      --concurrency C        clients sending back to back, when no --rate (default 4)
      --prompt-lens A,B,...  prompt lengths in words, drawn uniformly (default 16,64,128)
      --output-lens A,B,...  max_tokens values, drawn uniformly (default 32,128)
      --shared-prefix F      fraction of prompts that start with one shared prefix (default 0)
      --prefix-words N       length of the shared prefix in words (default 48)
      --seed N               workload seed (default 1)
      --out DIR              write report.json and report.md there (default: print only)
      --json                 print the JSON report instead of Markdown`;

function intList(name: string, v: string | undefined, fallback: number[]): number[] {
  if (v === undefined) return fallback;
  const xs = v.split(',').map((s) => intOption(name, s.trim(), 0, 1));
  if (xs.length === 0) throw new CliError(`--${name} needs at least one length`);
  return xs;
}

async function serveBench(argv: string[]): Promise<void> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      model: { type: 'string' },
      'api-key': { type: 'string' },
      requests: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      'prompt-lens': { type: 'string' },
      'output-lens': { type: 'string' },
      'shared-prefix': { type: 'string' },
      'prefix-words': { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!values.url) throw new CliError('bench serve needs --url (see vserve bench serve --help)');
  const url = values.url.replace(/\/+$/, '').replace(/\/v1$/, '');
  const rate = numberOption('rate', values.rate);
  if (rate !== undefined && !(rate > 0)) throw new CliError(`--rate must be > 0, got "${values.rate}"`);
  const shared = numberOption('shared-prefix', values['shared-prefix']) ?? 0;
  if (shared < 0 || shared > 1) throw new CliError(`--shared-prefix must be a fraction in [0, 1], got "${values['shared-prefix']}"`);
  const concurrency = intOption('concurrency', values.concurrency, 4, 1);
  const apiKey = values['api-key'];

  let model = values.model;
  if (!model) {
    const res = await fetch(`${url}/v1/models`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} }).catch((e: Error) => {
      throw new CliError(`cannot reach ${url}: ${e.message}`);
    });
    const list = (await res.json()) as { data?: { id: string }[] };
    model = list.data?.[0]?.id;
    if (!model) throw new CliError(`${url}/v1/models lists no model (status ${res.status}); pass --model`);
  }

  const plan = planWorkload({
    requests: intOption('requests', values.requests, 50, 1),
    promptLens: intList('prompt-lens', values['prompt-lens'], [16, 64, 128]),
    outputLens: intList('output-lens', values['output-lens'], [32, 128]),
    sharedPrefixRatio: shared,
    prefixWords: intOption('prefix-words', values['prefix-words'], 48, 1),
    rate,
    seed: intOption('seed', values.seed, 1),
  });
  const mode = rate !== undefined ? `Poisson arrivals at ${rate} req/s` : `${concurrency} concurrent clients`;
  const { results, durationS } = await runLoad({ url, model, apiKey }, plan, concurrency);
  const report = buildReport({ url, model, mode: `${mode}, shared prefix ${shared}` }, results, durationS);
  const md = markdownReport(report);
  if (values.out) {
    mkdirSync(values.out, { recursive: true });
    writeFileSync(join(values.out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    writeFileSync(join(values.out, 'report.md'), md);
  }
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : md);
  // A run where nothing got through measured nothing: a script must not take it for a result.
  if (report.succeeded === 0) throw new CliError(`all ${report.requests} requests failed (${Object.keys(report.errors).join('; ')})`);
}

export async function main(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'serve') return serveBench(rest);
  if (sub === '--help' || sub === '-h') {
    console.log(`${HELP}\n\nEngine benchmarks (prefill/decode, kernels, KV managers, schedulers): npm run bench -- --help`);
    return;
  }
  throw new CliError(`usage: vserve bench serve --url URL [options] (engine benchmarks: npm run bench -- --help)`);
}
