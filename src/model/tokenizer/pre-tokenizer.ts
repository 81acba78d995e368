// BPE pre-tokenizers: the regular expressions that cut text into words before merging, chosen by
// tokenizer.ggml.pre. Some presets apply several expressions in turn; each one cuts the pieces the
// previous one left, and the text between two matches stays a piece of its own (llama.cpp's rule).
// `\s` is taken as Unicode White_Space, the set llama.cpp's splitter uses (JS's `\s` differs at
// U+0085 and U+FEFF).
import { TokenizerError } from './errors.js';

export interface PreTokenizer {
  /** The tokenizer.ggml.pre name it was chosen by. */
  readonly name: string;
  /** Use a whole word as one token when the vocabulary has it, before any merging (Llama 3). */
  readonly ignoreMerges: boolean;
  /** Whether BOS is added when the file has no tokenizer.ggml.add_bos_token. */
  readonly addBosByDefault: boolean;
  split(text: string): string[];
}

const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const llama3Like = (digits: string) =>
  String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|` +
  digits + String.raw`| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const LLAMA3 = llama3Like(String.raw`\p{N}{1,3}`);
const QWEN2 = llama3Like(String.raw`\p{N}`);
const THREE_DIGITS = '[0-9][0-9][0-9]';

interface Preset {
  patterns: string[];
  ignoreMerges?: boolean;
  addBosByDefault?: boolean;
}

const GPT2_PRESET: Preset = { patterns: [GPT2] };
const STARCODER_PRESET: Preset = { patterns: [String.raw`\p{N}`, GPT2] };
const LLAMA3_PRESET: Preset = { patterns: [LLAMA3], ignoreMerges: true, addBosByDefault: true };
const QWEN2_PRESET: Preset = { patterns: [QWEN2] };

const PRESETS: Record<string, Preset> = {
  'default': { patterns: [String.raw`[\p{P}\$\+<=>\^~\|]+`, GPT2, String.raw`\p{N}+`, THREE_DIGITS] },
  'gpt-2': GPT2_PRESET,
  'phi-2': GPT2_PRESET,
  'mpt': GPT2_PRESET,
  'olmo': GPT2_PRESET,
  'falcon': { patterns: [String.raw`[\p{P}\$\+<=>\^~\|` + '`]+', GPT2, THREE_DIGITS] },
  'starcoder': STARCODER_PRESET,
  'refact': STARCODER_PRESET,
  'smollm': STARCODER_PRESET,
  'llama3': LLAMA3_PRESET,
  'llama-v3': LLAMA3_PRESET,
  'llama-bpe': LLAMA3_PRESET,
  'falcon3': LLAMA3_PRESET,
  'dbrx': { patterns: [LLAMA3] },
  'smaug-bpe': { patterns: [LLAMA3] },
  'qwen2': QWEN2_PRESET,
  'stablelm2': QWEN2_PRESET,
  'deepseek-r1-qwen': QWEN2_PRESET,
};

export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRESETS);

/** The pre-tokenizer for a tokenizer.ggml.pre value; a missing value means 'default', as in llama.cpp. */
export function preTokenizerFor(name: string | undefined): PreTokenizer {
  const key = name ?? 'default';
  const preset = Object.hasOwn(PRESETS, key) ? PRESETS[key] : undefined;
  if (!preset) {
    throw new TokenizerError(
      `unsupported BPE pre-tokenizer "${key}" (tokenizer.ggml.pre); supported: ${SUPPORTED_PRE_TOKENIZERS.join(', ')}`,
    );
  }
  const regexes = preset.patterns.map((p) => new RegExp(withUnicodeWhitespace(p), 'gu'));
  return {
    name: key,
    ignoreMerges: preset.ignoreMerges ?? false,
    addBosByDefault: preset.addBosByDefault ?? false,
    split: (text) => splitByRegexes(text, regexes),
  };
}

function withUnicodeWhitespace(pattern: string): string {
  return pattern.replaceAll(String.raw`\s`, String.raw`\p{White_Space}`).replaceAll(String.raw`\S`, String.raw`\P{White_Space}`);
}

function splitByRegexes(text: string, regexes: readonly RegExp[]): string[] {
  let pieces = text.length > 0 ? [text] : [];
  for (const regex of regexes) {
    const next: string[] = [];
    for (const piece of pieces) {
      let end = 0;
      for (const m of piece.matchAll(regex)) {
        if (m[0].length === 0) continue;
        if (m.index > end) next.push(piece.slice(end, m.index));
        next.push(m[0]);
        end = m.index + m[0].length;
      }
      if (end < piece.length) next.push(piece.slice(end));
    }
    pieces = next;
  }
  return pieces;
}
