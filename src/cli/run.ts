// vserve run: generate a continuation of a prompt and stream it to stdout.
import { parseArgs } from 'node:util';
import { generate } from '../engine/generate.js';
import { loadModel, type BackendKind } from '../model/load.js';
import { CliError, intOption, numberOption } from './cli-error.js';

const HELP = `usage: vserve run -m FILE -p PROMPT [options]
  -m, --model FILE           GGUF model (default: models/stories260K.gguf)
  -p, --prompt TEXT          the prompt (BOS is added when the model asks for it)
  -f, --prompt-file FILE     read the prompt from a file
  -n, --max-tokens N         tokens to generate at most (default 128; -1 = until the context is full)
      --temp T               temperature (default 0.8; 0 = greedy)
      --top-k K              keep the K most likely tokens (default 40; 0 = off)
      --top-p P              nucleus sampling (default 0.95; 1 = off)
      --min-p P              drop tokens below P x the best one's probability (default 0.05)
      --repeat-penalty R     repetition penalty (default 1 = off)
      --presence-penalty X   (default 0)
      --frequency-penalty X  (default 0)
      --seed N               make sampling reproducible
      --stop TEXT            stop before this text (repeatable)
      --backend KIND         native (default) or reference (plain TypeScript, slow)
      --threads N            compute threads (native backend; default: physical cores)
      --stats                print timings as one JSON object on stderr after the run`;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', short: 'm', default: 'models/stories260K.gguf' },
      prompt: { type: 'string', short: 'p' },
      'prompt-file': { type: 'string', short: 'f' },
      'max-tokens': { type: 'string', short: 'n' },
      temp: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'min-p': { type: 'string' },
      'repeat-penalty': { type: 'string' },
      'presence-penalty': { type: 'string' },
      'frequency-penalty': { type: 'string' },
      seed: { type: 'string' },
      stop: { type: 'string', multiple: true },
      backend: { type: 'string', default: 'native' },
      threads: { type: 'string' },
      stats: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  let prompt = values.prompt;
  if (values['prompt-file'] !== undefined) {
    const { readFileSync } = await import('node:fs');
    prompt = readFileSync(values['prompt-file'], 'utf8');
  }
  if (prompt === undefined) throw new CliError('run needs a prompt: -p TEXT or -f FILE (see vserve run --help)');
  const backend = values.backend as BackendKind;
  if (backend !== 'native' && backend !== 'reference') throw new CliError(`--backend must be native or reference, got "${values.backend}"`);
  const maxTokens = intOption('max-tokens', values['max-tokens'], 128, -1);
  const threads = values.threads === undefined ? undefined : intOption('threads', values.threads, 0, 1);

  const { model, tokenizer } = loadModel(values.model!, { backend, threads });
  try {
    const it = generate(model, tokenizer, prompt, {
      maxTokens: maxTokens < 0 ? undefined : maxTokens,
      temperature: numberOption('temp', values.temp) ?? 0.8,
      topK: values['top-k'] === undefined ? 40 : intOption('top-k', values['top-k'], 40),
      topP: numberOption('top-p', values['top-p']) ?? 0.95,
      minP: numberOption('min-p', values['min-p']) ?? 0.05,
      repetitionPenalty: numberOption('repeat-penalty', values['repeat-penalty']),
      presencePenalty: numberOption('presence-penalty', values['presence-penalty']),
      frequencyPenalty: numberOption('frequency-penalty', values['frequency-penalty']),
      seed: values.seed === undefined ? undefined : intOption('seed', values.seed, 0, -(2 ** 31)),
      stop: values.stop,
    });
    let r = it.next();
    while (!r.done) {
      process.stdout.write(r.value.text);
      r = it.next();
    }
    process.stdout.write('\n');
    if (values.stats) {
      const s = r.value;
      const round = (x: number) => Math.round(x * 100) / 100;
      process.stderr.write(
        JSON.stringify({
          prompt_tokens: s.promptTokens,
          completion_tokens: s.completionTokens,
          ttft_ms: round(s.ttftMs),
          prefill_tok_s: round(s.prefillTokS),
          decode_tok_s: round(s.decodeTokS),
          finish_reason: s.finishReason,
          backend: model.backend.name,
        }) + '\n',
      );
    }
  } finally {
    model.backend.close();
    model.close();
  }
}
