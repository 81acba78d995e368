// The library names its options and parameters (kvMemory, top_k); a CLI user typed flags. Errors that
// reach the CLI are reworded to name the flag, so the message points at what to change.
import { ENGINE_OPTION_NAMES, engineOptionInfo } from '../config/engine-config.js';

/** Engine.load options: the flags their schema names (those whose names are safe to reword). */
const ENGINE_FLAGS = ENGINE_OPTION_NAMES.flatMap((name) => {
  const { flag, reword } = engineOptionInfo(name);
  return flag !== undefined && reword !== false ? [[name, flag] as const] : [];
});

/** Request parameters, as the sampling errors name them (the API's spelling), and the flags of run and chat. */
const REQUEST_FLAGS = {
  temperature: '--temp', top_k: '--top-k', top_p: '--top-p', min_p: '--min-p', repetition_penalty: '--repeat-penalty',
  presence_penalty: '--presence-penalty', frequency_penalty: '--frequency-penalty', max_tokens: '--max-tokens', seed: '--seed',
};

export const FLAG_OF: Readonly<Record<string, string>> = { ...Object.fromEntries(ENGINE_FLAGS), ...REQUEST_FLAGS };

const NAMES = new RegExp(`(?<![-\\w])(${Object.keys(FLAG_OF).join('|')})(?![-\\w])`, 'g');

export function withFlagNames(message: string): string {
  return message.replace(NAMES, (name) => FLAG_OF[name]!);
}
