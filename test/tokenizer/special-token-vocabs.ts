// The vocabularies and texts of the special-token comparison with llama.cpp: the llama-spm and gpt-2
// vocabularies with rare ids reused for chat tokens (control <|im_start|>, <|im_end|>, <|eot_id|>;
// user-defined <tool> and <think>), over texts that spell them, next to and inside words.
import type { GGUFValue } from '../../src/model/gguf/types.js';
import { TokenType } from '../../src/model/tokenizer/index.js';
import { vocabMetadata, withTokens } from './vocab-fixtures.js';

const chatTokens = (first: number) => [
  { id: first, text: '<|im_start|>', type: TokenType.Control },
  { id: first + 1, text: '<|im_end|>', type: TokenType.Control },
  { id: first + 2, text: '<|eot_id|>', type: TokenType.Control },
  { id: first + 3, text: '<tool>', type: TokenType.UserDefined },
  { id: first + 4, text: '<think>', type: TokenType.UserDefined },
];

export const SPECIAL_TOKEN_VOCABS: Record<string, () => Map<string, GGUFValue>> = {
  'llama-spm': () => withTokens(vocabMetadata('llama-spm'), chatTokens(31990)),
  'gpt-2 (llama-bpe)': () => withTokens(vocabMetadata('gpt-2').set('tokenizer.ggml.pre', 'llama-bpe'), chatTokens(50200)),
};

export const SPECIAL_TOKEN_TEXTS: readonly string[] = [
  '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  '<s>Hello</s> world <unk>',
  'call<tool>{"a": 1}</tool> then <think>hmm</think>done',
  'text<|im_end|><|eot_id|>  <|im_start|> spaced <|im_end|>x',
  '<|im_start<|im_end|>|> <<|eot_id|>> <tool<tool>>',
];
