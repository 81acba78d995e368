// The tokenizers of benchmark models, as GGUF tokenizer.* metadata:
//   llama-spm: the real Llama SentencePiece vocabulary (test/fixtures/vocab/ggml-vocab-llama-spm.gguf), 32000 tokens.
//   qwen2-bpe: a byte-level BPE vocabulary laid out like Qwen2's: GPT-2's tokens and merges (the gpt-2
//     fixture), then stand-in normal tokens up to Qwen2's 151643 regular ones, its end-of-text and chat
//     markers at their real ids (151643-151645), and "[PADn]" unused tokens up to the model's vocabulary
//     size, as llama.cpp's converter pads Qwen2 files. Text tokenizes as GPT-2 text does; what the
//     benchmarks need is the size, which is what sampling and the output matrix cost.
import { join } from 'node:path';
import { GGUFFile } from '../src/model/gguf/reader.js';
import type { GGUFValue } from '../src/model/gguf/types.js';
import { TokenType } from '../src/model/tokenizer/vocabulary.js';
import { repoRoot } from './paths.js';

export type BenchTokenizer = 'llama-spm' | 'qwen2-bpe';

const vocabFixture = (name: string) => join(repoRoot, 'test', 'fixtures', 'vocab', `ggml-vocab-${name}.gguf`);

/** Qwen2's special tokens at their real ids; its regular BPE tokens are the ids below the first. */
const QWEN2_SPECIALS: readonly string[] = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const QWEN2_FIRST_SPECIAL = 151643;

/** The tokenizer.* metadata of a benchmark model with `vocab` tokens. */
export function benchTokenizerMetadata(tokenizer: BenchTokenizer, vocab: number): Map<string, GGUFValue> {
  switch (tokenizer) {
    case 'llama-spm': {
      const meta = tokenizerKeys(vocabFixture('llama-spm'));
      const size = (meta.get('tokenizer.ggml.tokens') as string[]).length;
      if (vocab !== size) throw new Error(`vocab ${vocab}: the llama-spm tokenizer has ${size} tokens`);
      return meta;
    }
    case 'qwen2-bpe':
      return qwen2Vocabulary(vocab);
  }
}

function tokenizerKeys(path: string): Map<string, GGUFValue> {
  const file = GGUFFile.open(path);
  try {
    return new Map([...file.metadata].filter(([key]) => key.startsWith('tokenizer.')));
  } finally {
    file.close();
  }
}

function qwen2Vocabulary(vocab: number): Map<string, GGUFValue> {
  const minimum = QWEN2_FIRST_SPECIAL + QWEN2_SPECIALS.length;
  if (vocab < minimum) throw new Error(`vocab ${vocab}: the qwen2-bpe tokenizer needs at least ${minimum} tokens`);
  const gpt2 = tokenizerKeys(vocabFixture('gpt-2'));
  const gpt2Tokens = gpt2.get('tokenizer.ggml.tokens') as string[];
  const gpt2Types = gpt2.get('tokenizer.ggml.token_type') as Int32Array;
  // GPT-2's regular tokens; its own <|endoftext|> (the last one, a control token) moves to Qwen2's id.
  const regular = gpt2Tokens.findIndex((_, i) => gpt2Types[i] !== TokenType.Normal);
  if (regular !== gpt2Tokens.length - 1 || gpt2Tokens[regular] !== '<|endoftext|>') {
    throw new Error('the gpt-2 fixture no longer ends with its one control token, <|endoftext|>');
  }
  const tokens = gpt2Tokens.slice(0, regular);
  const types = new Int32Array(vocab);
  types.fill(TokenType.Normal, 0, QWEN2_FIRST_SPECIAL);
  // Stand-ins for the regular tokens Qwen2 has beyond GPT-2's: normal, reached by no merge.
  for (let id = regular; id < QWEN2_FIRST_SPECIAL; id++) tokens.push(`[PAD${id}]`);
  for (const text of QWEN2_SPECIALS) {
    types[tokens.length] = TokenType.Control;
    tokens.push(text);
  }
  for (let id = tokens.length; id < vocab; id++) {
    types[id] = TokenType.Unused;
    tokens.push(`[PAD${id}]`);
  }
  const endOfText = QWEN2_FIRST_SPECIAL;
  return new Map<string, GGUFValue>([
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', 'qwen2'],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.merges', gpt2.get('tokenizer.ggml.merges')!],
    // As Qwen2.5 base models: <|endoftext|> is BOS, EOS and padding, and no BOS is added to prompts.
    ['tokenizer.ggml.bos_token_id', endOfText],
    ['tokenizer.ggml.eos_token_id', endOfText],
    ['tokenizer.ggml.padding_token_id', endOfText],
    ['tokenizer.ggml.add_bos_token', false],
  ]);
}
