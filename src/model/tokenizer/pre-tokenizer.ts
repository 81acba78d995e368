// BPE pre-tokenizers: how text is cut into words before merging, chosen by tokenizer.ggml.pre. Every
// name llama.cpp knows is here, with the steps llama.cpp runs for it: most are regular expressions
// (run with llama.cpp's semantics, see llama-regex-split.ts), a few are hand-written scans
// (custom-splits.ts). Each step cuts the pieces the previous one left. A preset may also change how
// words are merged: whole-word lookup first (Llama 3), or SentencePiece-style merging on raw UTF-8
// with spaces written as `▁` (Gemma 4).
import { digitGroupsFromRight, kimiK2, newlineRuns } from './custom-splits.js';
import { TokenizerError } from './errors.js';
import { llamaRegexSplitter, type PieceSplitter } from './llama-regex-split.js';

export interface PreTokenizer {
  /** The tokenizer.ggml.pre name it was chosen by. */
  readonly name: string;
  /** Use a whole word as one token when the vocabulary has it, before any merging (Llama 3). */
  readonly ignoreMerges: boolean;
  /** Use a word made only of newlines as one token when the vocabulary has it (Gemma 4). */
  readonly wholeNewlineRuns: boolean;
  /** Whether BOS is added when the file has no tokenizer.ggml.add_bos_token. */
  readonly addBosByDefault: boolean;
  /** Whether the file's BOS token is ignored (GLM-4 names one it never uses). */
  readonly noBos: boolean;
  /** Words are spelled in GPT-2's byte alphabet (true) or merged as raw UTF-8 characters (false). */
  readonly byteEncoded: boolean;
  /** Spaces are written as `▁` before splitting, and read back as spaces (SentencePiece-style BPE). */
  readonly escapeSpaces: boolean;
  split(text: string): string[];
}

type Step = string | PieceSplitter;

interface Preset {
  steps: Step[];
  ignoreMerges?: boolean;
  wholeNewlineRuns?: boolean;
  addBosByDefault?: boolean;
  noBos?: boolean;
  byteEncoded?: boolean;
  escapeSpaces?: boolean;
}

// The expressions, in llama.cpp's syntax (String.raw keeps the backslashes as written).
const CONTRACTIONS = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])`;
const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const TRAILING_SPACES = String.raw`\s*[\r\n]+|\s+(?!\S)|\s+`;
const llama3Like = (digits: string) =>
  CONTRACTIONS + String.raw`|[^\r\n\p{L}\p{N}]?\p{L}+|` + digits + String.raw`| ?[^\s\p{L}\p{N}]+[\r\n]*|` + TRAILING_SPACES;
const LLAMA3 = llama3Like(String.raw`\p{N}{1,3}`);
const QWEN2 = llama3Like(String.raw`\p{N}`);
const QWEN35 = CONTRACTIONS + String.raw`|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|` + TRAILING_SPACES;
const JAIS2 = CONTRACTIONS + String.raw`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|` +
  [512, 256, 128, 64, 32, 16, 8, 4].map((n) => String.raw`\s{${n}}(?!\S)|`).join('') + String.raw`\s{1,2}(?!\S)|\s{1}`;
const THREE_DIGITS = '[0-9][0-9][0-9]';
const DIGIT = String.raw`\p{N}`;
const UP_TO_THREE_DIGITS = String.raw`\p{N}{1,3}`;
const CJK_KANA = '[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+';
// A letter run led by one ASCII punctuation mark, words, punctuation runs (DeepSeek V3 and kin).
const ASCII_PUNCT_WORD = String.raw`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_` + '`' + String.raw`{|}~][A-Za-z]+`;
const DEEPSEEK3_WORDS = ASCII_PUNCT_WORD + String.raw`|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|` + TRAILING_SPACES;
// Letter runs split at case changes: upper-then-lower or all-upper (GPT-4o, Tekken). The lookahead
// form of "[^a-z]"/"[^A-Z]" letters is llama.cpp's stand-in for \p{Lu}/\p{Ll}.
const UPPER_RUN = String.raw`((?=[\p{L}])([^a-z]))`;
const LOWER_RUN = String.raw`((?=[\p{L}])([^A-Z]))`;
const casedWords = (contraction: string) =>
  String.raw`[^\r\n\p{L}\p{N}]?` + UPPER_RUN + '*' + LOWER_RUN + '+' + contraction +
  String.raw`|[^\r\n\p{L}\p{N}]?` + UPPER_RUN + '+' + LOWER_RUN + '*' + contraction;
const TEKKEN = casedWords('') + String.raw`|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|` + TRAILING_SPACES;
const GPT4O = casedWords(CONTRACTIONS + '?') + String.raw`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|` + TRAILING_SPACES;
const GRANITE_MULTI = GPT4O.replaceAll(String.raw`(?=[\p{L}])`, String.raw`(?=[\p{L}\p{M}])`);
const CATEGORY_CASED = String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+` + CONTRACTIONS +
  String.raw`?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*` + CONTRACTIONS + '?';
const TINY_AYA = CATEGORY_CASED + String.raw`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|` + TRAILING_SPACES;
const YOUTU_ASIAN = '[\uac00-\ud7a3\u3131-\u318e]+|[\uff01\u2026\u201c\u201d\u2018\u2019\u2014\uff1a\uff1b\uff0c\u3001-\u303f\ufe30-\ufe4f]+|[\u3105-\u312f]+|' + CJK_KANA;
const YOUTU = CATEGORY_CASED + String.raw`|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|` + TRAILING_SPACES;
const NO_SENTENCE_PUNCT = String.raw` ?[^(\s|.,!?…。，、।۔،)]+`;
// DeepSeek LLM: Latin/Greek/Cyrillic-like letter runs (by code point range, no categories), ASCII
// and fullwidth punctuation runs, trailing spaces, CJK/Hangul runs, then numbers.
// (Some letters are written as escapes: they are the exact code points llama.cpp's source has.)
const DEEPSEEK_LETTERS = String.raw`\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌῐ-\u{1FD3}ῖ-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+`;
const DEEPSEEK_CJK = '[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+';
const AFMOE_ASIAN = '[\u4e00-\u9fff\u3400-\u4dbf\u8c48-\ufaff\u3040-\u309f\u30a0-\u30ff\uff65-\uff9f\u2f00-\u2fdf\u0e40-\u0e7f\u0e80-\u0eff\u1780-\u17ff\u1000-\u109f\uaa60-\uaa7f\ua9e0-\ua9ff\uac00-\ud7af\u1100-\u11ff]+';
const DEFAULT_STEPS: Step[] = [String.raw`[\p{P}\$\+<=>\^~\|]+`, GPT2, String.raw`\p{N}+`, THREE_DIGITS];

const gpt2: Preset = { steps: [GPT2] };
const digitsThenGpt2: Preset = { steps: [DIGIT, GPT2] };
const llama3: Preset = { steps: [LLAMA3], ignoreMerges: true, addBosByDefault: true };
const llama3Regex: Preset = { steps: [LLAMA3] };
const qwen2: Preset = { steps: [QWEN2] };
const deepseek3: Preset = { steps: [UP_TO_THREE_DIGITS, CJK_KANA, DEEPSEEK3_WORDS] };
const gpt4o: Preset = { steps: [GPT4O] };
const tinyAya: Preset = { steps: [digitGroupsFromRight, TINY_AYA] };
const bailing: Preset = { steps: [String.raw`'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`] };
const gemma4: Preset = { steps: [newlineRuns], wholeNewlineRuns: true, addBosByDefault: true, byteEncoded: false, escapeSpaces: true };
const poro: Preset = { steps: [NO_SENTENCE_PUNCT] };

/** Every tokenizer.ggml.pre name llama.cpp accepts, with what it does. */
const PRESETS: Record<string, Preset> = {
  'default': { steps: DEFAULT_STEPS },
  ...names(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'], llama3),
  'minicpm5': { steps: [UP_TO_THREE_DIGITS, llama3Like(String.raw`\p{N}+`)], ignoreMerges: true },
  'deepseek-llm': { steps: [String.raw`[\r\n]`, DEEPSEEK_LETTERS, String.raw`\s?[!-/:-~！-／：-～‘-‟　-。]+`, String.raw`\s+$`, DEEPSEEK_CJK, String.raw`\p{N}+`] },
  'deepseek-coder': { steps: [String.raw`[\r\n]`, String.raw`\s?\p{L}+`, String.raw`\s?\p{P}+`, DEEPSEEK_CJK, DIGIT] },
  ...names(['deepseek-v3', 'hunyuan-dense', 'joyai-llm', 'hy_v4'], deepseek3),
  'spark2_5': { steps: [UP_TO_THREE_DIGITS, CJK_KANA, ASCII_PUNCT_WORD + String.raw`|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+`, DIGIT] },
  'youtu': { steps: [YOUTU_ASIAN, YOUTU], ignoreMerges: true },
  'falcon': { steps: [String.raw`[\p{P}\$\+<=>\^~\|` + '`]+', GPT2, THREE_DIGITS] },
  ...names(['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b', 'mellum2'], digitsThenGpt2),
  ...names(['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'modern-bert',
    'jina-v1-en', 'jina-v2-code', 'roberta-bpe', 'exaone4', 'mpt', 'olmo', 'jais', 'trillion', 'granite-docling'], gpt2),
  'jais-2': { steps: [JAIS2] },
  ...names(['gemma4', 'granite-embed-multi-311m'], gemma4),
  'sarvam-moe': { ...gemma4, wholeNewlineRuns: false, addBosByDefault: false },
  'whitespace': { steps: [String.raw`\S+`], byteEncoded: false },
  ...names(['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2', 'megrez', 'stablelm2', 'hunyuan', 'solar-open'], qwen2),
  'qwen35': { steps: [QWEN35] },
  ...names(['dbrx', 'smaug-bpe'], llama3Regex),
  ...names(['poro-chat', 'bloom', 'gpt3-finnish'], poro),
  ...names(['glm4', 'chatglm-bpe'], { steps: [LLAMA3], noBos: true }),
  'viking': { steps: [NO_SENTENCE_PUNCT, DIGIT] },
  'tekken': { steps: [TEKKEN], ignoreMerges: true, addBosByDefault: true },
  'exaone-moe': { steps: [CONTRACTIONS + String.raw`|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+`] },
  'chameleon': {
    steps: ['<sentinel:[0-9]+>', '(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z', '([\\t\\n]|    |  )', DIGIT, String.raw`[\p{P}!-/:-@\[-` + '`{-~]', GPT2],
    addBosByDefault: true,
  },
  ...names(['gpt-4o', 'llama4', 'kanana2', 'talkie', 'minimax-m2'], gpt4o),
  'granite-embed-multi-97m': { steps: [GRANITE_MULTI], ignoreMerges: true },
  ...names(['tiny_aya', 'cohere2moe'], tinyAya),
  'superbpe': { steps: [String.raw`\p{N}+`, String.raw`(?=(\d{3})+(?!\d))`] },
  ...names(['bailingmoe', 'bailingmoe2', 'llada-moe'], bailing),
  'seed-coder': { steps: [CONTRACTIONS + String.raw`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|` + TRAILING_SPACES] },
  'kimi-k2': { steps: [kimiK2] },
  'ufakzeka': { steps: [String.raw`[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|` + TRAILING_SPACES] },
  'grok-2': qwen2,
  'afmoe': { steps: [digitGroupsFromRight, AFMOE_ASIAN, DEEPSEEK3_WORDS] },
  'laguna': { steps: [newlineRuns, QWEN2] },
};

function names(list: string[], preset: Preset): Record<string, Preset> {
  return Object.fromEntries(list.map((name) => [name, preset]));
}

export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRESETS);

/** The pre-tokenizer for a tokenizer.ggml.pre value; a missing value means 'default', as in llama.cpp. */
export function preTokenizerFor(name: string | undefined): PreTokenizer {
  const key = name ?? 'default';
  const preset = Object.hasOwn(PRESETS, key) ? PRESETS[key] : undefined;
  if (!preset) {
    throw new TokenizerError(
      `unknown BPE pre-tokenizer "${key}" (tokenizer.ggml.pre); known: ${SUPPORTED_PRE_TOKENIZERS.join(', ')}`,
    );
  }
  const splitters = preset.steps.map((step) => (typeof step === 'string' ? llamaRegexSplitter(step) : step));
  return {
    name: key,
    ignoreMerges: preset.ignoreMerges ?? false,
    wholeNewlineRuns: preset.wholeNewlineRuns ?? false,
    addBosByDefault: preset.addBosByDefault ?? false,
    noBos: preset.noBos ?? false,
    byteEncoded: preset.byteEncoded ?? true,
    escapeSpaces: preset.escapeSpaces ?? false,
    split: (text) => splitInSteps(text, splitters),
  };
}

function splitInSteps(text: string, splitters: readonly PieceSplitter[]): string[] {
  let pieces = text.length > 0 ? [text] : [];
  for (const splitter of splitters) pieces = pieces.flatMap(splitter);
  return pieces;
}
