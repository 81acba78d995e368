// The sampling flags `run` and `chat` share: their parseArgs entries, help lines and RequestParams.
// Ranges are the library's (SamplingError, reworded to name the flag); these only parse numbers.
import type { RequestParams } from '../engine/completion.js';
import { CliError, intOption, numberOption } from './cli-error.js';

export const SAMPLING_OPTIONS = {
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
} as const;

export const SAMPLING_HELP = `  -n, --max-tokens N         tokens to generate at most (default 128; -1 = until the context is full)
      --temp T               temperature (default 0.8; 0 = greedy)
      --top-k K              keep the K most likely tokens (default 40; 0 = off)
      --top-p P              nucleus sampling (default 0.95; 1 = off)
      --min-p P              drop tokens below P x the best one's probability (default 0.05)
      --repeat-penalty R     repetition penalty (default 1 = off)
      --presence-penalty X   (default 0)
      --frequency-penalty X  (default 0)
      --seed N               make sampling reproducible
      --stop TEXT            stop before this text (repeatable)`;

type SamplingValues = { [K in keyof typeof SAMPLING_OPTIONS]?: (typeof SAMPLING_OPTIONS)[K] extends { multiple: true } ? string[] : string };

export function samplingParams(v: SamplingValues): RequestParams {
  const maxTokens = intOption('max-tokens', v['max-tokens'], 128, -1);
  // As the API's max_tokens: at least 1; -1 is the CLI's way to say "no limit".
  if (maxTokens === 0) throw new CliError('--max-tokens must be at least 1, or -1 for "until the context is full", got "0"');
  return {
    maxTokens: maxTokens < 0 ? undefined : maxTokens,
    temperature: numberOption('temp', v.temp) ?? 0.8,
    topK: intOption('top-k', v['top-k'], 40, -Infinity),
    topP: numberOption('top-p', v['top-p']) ?? 0.95,
    minP: numberOption('min-p', v['min-p']) ?? 0.05,
    repetitionPenalty: numberOption('repeat-penalty', v['repeat-penalty']),
    presencePenalty: numberOption('presence-penalty', v['presence-penalty']),
    frequencyPenalty: numberOption('frequency-penalty', v['frequency-penalty']),
    seed: v.seed === undefined ? undefined : intOption('seed', v.seed, 0, -Infinity),
    stop: v.stop,
  };
}
