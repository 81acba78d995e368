// vserve chat: a conversation in the terminal through the model's chat template, over the library's
// Engine. Answers stream as they are generated; Ctrl-C stops the answer, a second Ctrl-C at the prompt
// (or /exit, or Ctrl-D) leaves.
import { loadProgress } from './load-progress.js';
import { createInterface } from 'node:readline';
import { Engine } from '../engine/engine.js';
import type { ChatMessage } from '../model/chat-template.js';
import { parseCliArgs } from './args.js';
import { COMPUTE_HELP, COMPUTE_OPTIONS, computeOptions } from './compute-flags.js';
import { KV_TYPE_HELP, KV_TYPE_OPTIONS, kvResidualOption, kvRotateOption, kvTypeOption } from './kv-type-flags.js';
import { KV_POLICY_OPTIONS, kvBudgetOption, kvPolicyHelp, kvPolicyOption } from './kv-policy-flags.js';
import { MODEL_OPTION, modelArgument } from './model-arg.js';
import { SAMPLING_HELP, SAMPLING_OPTIONS, samplingParams } from './sampling-flags.js';

const HELP = `usage: vserve chat [-m] [FILE] [--system TEXT] [options]
  -m, --model FILE           GGUF model (also as a bare FILE; default: the bundled stories260K)
      --system TEXT          the system message that starts every conversation
${SAMPLING_HELP}
${COMPUTE_HELP}
${KV_TYPE_HELP}
${kvPolicyHelp(29)}
                             (default here: sinks at the full context, so a long conversation
                             drops its oldest turns instead of failing; with KIVI caches: none)

In the chat: /reset starts a new conversation, /exit (or Ctrl-D) quits. Ctrl-C stops the answer being
written; at the prompt, a second Ctrl-C quits.`;

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCliArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...MODEL_OPTION,
      system: { type: 'string' },
      ...SAMPLING_OPTIONS,
      ...COMPUTE_OPTIONS,
      ...KV_TYPE_OPTIONS,
      ...KV_POLICY_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const params = samplingParams(values);
  const modelPath = modelArgument('chat', values.model, positionals);
  // One conversation at a time: one KV slot at the model's full context. A conversation that outgrows
  // it keeps going: the oldest tokens are evicted (a context shift), except from caches that cannot evict.
  const kvPolicy = kvPolicyOption(values) ?? (values['kv-quant'] === undefined ? 'sinks' : undefined);
  const engine = await Engine.load(modelPath, {
    maxSeqs: 1, ...computeOptions(values), kvType: kvTypeOption(values), kvResidual: kvResidualOption(values), kvRotate: kvRotateOption(values),
    kvPolicy, kvBudget: kvBudgetOption(values),
  }, { onProgress: loadProgress(modelPath) });
  const start: ChatMessage[] = values.system !== undefined ? [{ role: 'system', content: values.system }] : [];
  let messages = [...start];
  let answering: AbortController | undefined;
  let warnedAtPrompt = false;

  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' });
  rl.on('SIGINT', () => {
    if (answering) {
      answering.abort();
    } else if (warnedAtPrompt) {
      process.stdout.write('\n');
      rl.close();
    } else {
      warnedAtPrompt = true;
      process.stdout.write('\n(Ctrl-C again, /exit or Ctrl-D to quit)\n');
      rl.prompt();
    }
  });
  console.log(`vserve chat: ${modelPath} (${engine.info.arch}, ${engine.info.maxContext} tokens of context). /reset starts over, /exit quits, Ctrl-C stops an answer.`);
  rl.prompt();

  try {
    for await (const raw of rl) {
      const line = raw.trim();
      warnedAtPrompt = false;
      if (line === '/exit' || line === '/quit') break;
      if (line === '/reset') {
        messages = [...start];
        console.log('(new conversation)');
      } else if (line.startsWith('/')) {
        console.log(`(unknown command ${line.split(/\s/)[0]}; the commands are /reset and /exit)`);
      } else if (line !== '') {
        messages.push({ role: 'user', content: line });
        answering = new AbortController();
        const answer = await streamAnswer(engine, messages, params, answering.signal);
        answering = undefined;
        // A failed turn (the conversation no longer fits the context) is not kept.
        if (answer === undefined) messages.pop();
        else messages.push({ role: 'assistant', content: answer });
      }
      rl.prompt();
    }
  } finally {
    rl.close();
    await engine.close();
  }
}

/** Writes the answer as it comes; returns its text (what was written before a Ctrl-C), or undefined on an error. */
async function streamAnswer(engine: Engine, messages: ChatMessage[], params: ReturnType<typeof samplingParams>, signal: AbortSignal): Promise<string | undefined> {
  let text = '';
  try {
    for await (const delta of engine.generate(messages, params, { signal })) {
      process.stdout.write(delta.text);
      text += delta.text;
      if (delta.finish_reason === 'abort') process.stdout.write(' (stopped)');
    }
    process.stdout.write('\n');
    return text.trim();
  } catch (e) {
    process.stdout.write(`\nvserve: ${(e as Error).message}; /reset starts a new conversation\n`);
    return undefined;
  }
}
