// The token table of a GGUF vocabulary (tokenizer.ggml.*): token texts, types and scores, the special
// token ids, the BOS/EOS and leading-space flags, and which tokens end a generation. Both tokenizer
// kinds build on it; it knows nothing about how text is split into tokens.
import type { GGUFValue } from '../gguf/types.js';
import { TokenizerError } from './errors.js';

/** tokenizer.ggml.token_type values (llama.cpp's token types). */
export enum TokenType {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  /** BOS, EOS, chat markers: only matched in text when parseSpecial is on, skippable when decoding. */
  Control = 3,
  /** Added tokens that are always matched as whole tokens in text (e.g. MPT's runs of spaces). */
  UserDefined = 4,
  Unused = 5,
  /** SentencePiece byte-fallback tokens `<0xXX>`. */
  Byte = 6,
}

export type GGUFMetadata = ReadonlyMap<string, GGUFValue>;

// Which tokens end a generation is not stored in GGUF files beyond a few ids, so, like llama.cpp, we
// also go by well-known token texts. Such tokens are made control tokens whatever their stored type.
/** End-of-turn texts, in the order an EOT id is guessed from them when the file names none. */
const END_OF_TURN_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>',
  '<｜end▁of▁sentence｜>', '<end_of_utterance>',
];
const END_OF_GENERATION_TEXTS = new Set([
  ...END_OF_TURN_TEXTS, '<|eom_id|>', '<|return|>', '<|call|>',
  // Fill-in-the-middle padding and repository/file separators end a code completion.
  '<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<|file_sep|>', '<file-sep>',
]);
const END_OF_GENERATION_KEYS = ['eos', 'eot', 'eom', 'fim_pad', 'fim_rep', 'fim_sep'];

/** Defaults that depend on the tokenizer kind when the file does not set them. */
export interface VocabularyDefaults {
  addBos: boolean;
  addSpacePrefix: boolean;
}

export class Vocabulary {
  readonly tokens: readonly string[];
  readonly types: Int32Array;
  /** SentencePiece scores (0 for every token when the file has none). */
  readonly scores: Float32Array;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly eot: number | undefined;
  readonly unk: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  private readonly idByText = new Map<string, number>();
  private readonly endOfGeneration = new Set<number>();

  constructor(meta: GGUFMetadata, defaults: VocabularyDefaults) {
    const tokens = meta.get('tokenizer.ggml.tokens');
    if (!Array.isArray(tokens) || tokens.length === 0 || typeof tokens[0] !== 'string') {
      throw new TokenizerError('tokenizer.ggml.tokens is missing or is not a non-empty array of strings');
    }
    this.tokens = tokens as string[];
    const n = this.tokens.length;
    this.types = numericArray(meta, 'tokenizer.ggml.token_type', n, Int32Array, TokenType.Normal);
    this.scores = numericArray(meta, 'tokenizer.ggml.scores', n, Float32Array, 0);
    // When a text appears twice the later id wins, as in llama.cpp.
    this.tokens.forEach((text, id) => this.idByText.set(text, id));

    this.tokens.forEach((text, id) => {
      if (END_OF_GENERATION_TEXTS.has(text)) {
        this.types[id] = TokenType.Control;
        this.endOfGeneration.add(id);
      }
    });
    this.bos = this.tokenIdKey(meta, 'bos');
    this.eos = this.tokenIdKey(meta, 'eos');
    this.eot = this.tokenIdKey(meta, 'eot') ?? this.guessEndOfTurn();
    this.unk = this.tokenIdKey(meta, 'unknown');
    this.addBos = flag(meta, 'tokenizer.ggml.add_bos_token', defaults.addBos);
    this.addEos = flag(meta, 'tokenizer.ggml.add_eos_token', false);
    this.addSpacePrefix = flag(meta, 'tokenizer.ggml.add_space_prefix', defaults.addSpacePrefix);

    for (const key of END_OF_GENERATION_KEYS) {
      const id = key === 'eot' ? this.eot : this.tokenIdKey(meta, key);
      if (id !== undefined) this.endOfGeneration.add(id);
    }
  }

  get size(): number {
    return this.tokens.length;
  }

  /** The id of a token text (any type), or undefined. */
  id(text: string): number | undefined {
    return this.idByText.get(text);
  }

  type(id: number): TokenType {
    this.checkId(id);
    return this.types[id] as TokenType;
  }

  /** Control and user-defined tokens: those matched as whole tokens rather than built from text. */
  isSpecial(id: number): boolean {
    const t = this.types[id];
    return t === TokenType.Control || t === TokenType.UserDefined;
  }

  isEndOfGeneration(id: number): boolean {
    return this.endOfGeneration.has(id);
  }

  checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) {
      throw new TokenizerError(`token id ${id} is out of range (the vocabulary has ${this.tokens.length} tokens)`);
    }
  }

  private guessEndOfTurn(): number | undefined {
    for (const text of END_OF_TURN_TEXTS) {
      const id = this.idByText.get(text);
      if (id !== undefined) return id;
    }
    return undefined;
  }

  /** tokenizer.ggml.<name>_token_id; an id outside the vocabulary is ignored, as llama.cpp does. */
  private tokenIdKey(meta: GGUFMetadata, name: string): number | undefined {
    const v = meta.get(`tokenizer.ggml.${name}_token_id`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= this.tokens.length) return undefined;
    return v;
  }
}

function flag(meta: GGUFMetadata, key: string, fallback: boolean): boolean {
  const v = meta.get(key);
  return typeof v === 'boolean' ? v : fallback;
}

type NumericArrayType<T> = { new (length: number): T; from(src: ArrayLike<number>): T };

/** A per-token numeric array of the right length, or one filled with `fill` when the key is absent. */
function numericArray<T extends Int32Array | Float32Array>(
  meta: GGUFMetadata, key: string, length: number, Type: NumericArrayType<T>, fill: number,
): T {
  const v = meta.get(key);
  if (v === undefined) return Type.from(new Array<number>(length).fill(fill));
  if (!ArrayBuffer.isView(v) || v instanceof DataView || typeof (v as Int32Array)[0] !== 'number') {
    throw new TokenizerError(`${key} is not a numeric array`);
  }
  const arr = v as ArrayLike<number>;
  if (arr.length !== length) {
    throw new TokenizerError(`${key} has ${arr.length} entries but tokenizer.ggml.tokens has ${length}`);
  }
  return Type.from(arr);
}
