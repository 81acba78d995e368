// The chat templates of the model families vserve's tests use, written for vserve from each family's
// documented prompt format (test/fixtures/chat-templates/*.jinja), with the BOS/EOS texts a GGUF of
// that family names. Test models can embed them (tokenizer.chat_template) to look like the real thing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export interface ChatTemplateFixture {
  /** The Jinja source. */
  template: string;
  bosToken: string;
  eosToken: string;
}

const FAMILIES = {
  'qwen2.5': { bosToken: '<|endoftext|>', eosToken: '<|im_end|>' },
  'qwen3': { bosToken: '<|endoftext|>', eosToken: '<|im_end|>' },
  'phi-3': { bosToken: '<s>', eosToken: '<|endoftext|>' },
  'gemma': { bosToken: '<bos>', eosToken: '<eos>' },
  'mistral': { bosToken: '<s>', eosToken: '</s>' },
  'llama-3': { bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' },
} as const;

export type ChatTemplateFamily = keyof typeof FAMILIES;
export const CHAT_TEMPLATE_FAMILIES = Object.keys(FAMILIES) as ChatTemplateFamily[];

export function chatTemplateFixture(family: ChatTemplateFamily): ChatTemplateFixture {
  const template = readFileSync(join(repoRoot, 'test', 'fixtures', 'chat-templates', `${family}.jinja`), 'utf8');
  return { template, ...FAMILIES[family] };
}
