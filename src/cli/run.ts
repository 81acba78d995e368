// vserve run: generate a continuation of a prompt (or, with --chat, a chat answer) and stream it to stdout.
import { loadProgress } from './load-progress.js';
import { readFileSync } from 'node:fs';
import { ArrayKV } from '../backend/array-kv.js';
import { chatRenderer, resolveKVType } from '../engine/engine-setup.js';
import { generate } from '../engine/generate.js';
import { ChatTemplate, type ChatMessage } from '../model/chat-template.js';
import { loadModel } from '../model/load.js';
import { parseCliArgs } from './args.js';
import { CliError } from './cli-error.js';
import { COMPUTE_HELP, COMPUTE_OPTIONS, computeOptions } from './compute-flags.js';
import { KV_TYPE_HELP, KV_TYPE_OPTIONS, kvResidualOption, kvRotateOption, kvTypeOption } from './kv-type-flags.js';
import { MODEL_OPTION, modelArgument } from './model-arg.js';
import { SAMPLING_HELP, SAMPLING_OPTIONS, samplingParams } from './sampling-flags.js';

const HELP = `usage: vserve run [-m] [FILE] (-p PROMPT | -f FILE) [options]
  -m, --model FILE           GGUF model (also as a bare FILE; default: the bundled stories260K)
  -p, --prompt TEXT          the prompt (BOS is added when the model asks for it)
  -f, --prompt-file FILE     read the prompt from a file
      --chat                 send the prompt as a user message through the model's chat template
      --system TEXT          a system message before it (implies --chat)
${SAMPLING_HELP}
${COMPUTE_HELP}
${KV_TYPE_HELP}
      --stats                print timings (load_ms apart from ttft_ms), ISA and threads as one JSON object on stderr after the run`;

function readPromptFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (e as Error).message;
    throw new CliError(`cannot read the prompt file ${path}: ${why}`);
  }
}

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCliArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...MODEL_OPTION,
      prompt: { type: 'string', short: 'p' },
      'prompt-file': { type: 'string', short: 'f' },
      chat: { type: 'boolean' },
      system: { type: 'string' },
      ...SAMPLING_OPTIONS,
      ...COMPUTE_OPTIONS,
      ...KV_TYPE_OPTIONS,
      stats: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (values.prompt !== undefined && values['prompt-file'] !== undefined) throw new CliError('give the prompt once: -p TEXT or -f FILE, not both');
  const prompt = values['prompt-file'] !== undefined ? readPromptFile(values['prompt-file']) : values.prompt;
  if (prompt === undefined) throw new CliError('run needs a prompt: -p TEXT or -f FILE (see vserve run --help)');
  const compute = computeOptions(values);
  const params = samplingParams(values);
  const modelPath = modelArgument('run', values.model, positionals);

  const { model, tokenizer, loadMs } = loadModel(modelPath, { ...compute, onProgress: loadProgress(modelPath) });
  try {
    let input: string | number[] = prompt;
    if (values.chat || values.system !== undefined) {
      const messages: ChatMessage[] = [...(values.system !== undefined ? [{ role: 'system', content: values.system }] : []), { role: 'user', content: prompt }];
      input = chatRenderer(ChatTemplate.fromGGUF(model.file), tokenizer)(messages);
    }
    const c = model.config;
    const kvType = kvTypeOption(values), residual = kvResidualOption(values);
    const rotate = kvRotateOption(values);
    const kv = (kvType ?? residual ?? rotate) !== undefined ? new ArrayKV(c.nLayers, 1, c.contextLength, c.nKVHeads, c.headDim, resolveKVType(kvType), residual, rotate) : undefined;
    const it = generate(model, tokenizer, input, { ...params, ...(kv ? { kv } : {}) });
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
          load_ms: round(loadMs),
          prompt_tokens: s.promptTokens,
          completion_tokens: s.completionTokens,
          ttft_ms: round(s.ttftMs),
          prefill_tok_s: round(s.prefillTokS),
          decode_tok_s: round(s.decodeTokS),
          finish_reason: s.finishReason,
          backend: model.backend.name,
          isa: model.backend.isa,
          threads: model.backend.threads,
        }) + '\n',
      );
    }
  } finally {
    model.backend.close();
    model.close();
  }
}
