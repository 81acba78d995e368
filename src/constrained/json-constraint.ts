// Constrained decoding for response_format: before each draw, a mask of the vocabulary admits only
// the tokens whose bytes keep the output a prefix of a document the schema accepts, and that leave
// enough of the token budget to close it; end-of-generation only once the document is complete.
// Each token's bytes are computed once per tokenizer, so a step costs one walk of the vocabulary.
import { canEnd, cost, initialState, stepAll, type JsonState } from './json-automaton.js';
import { compileResponseFormat, minLength, type ResponseFormat } from './json-schema.js';
import { RequestFaultError } from '../engine/error-kind.js';

/** What masking needs of a tokenizer. */
export interface VocabularyTokenizer {
  readonly vocabSize: number;
  tokenToPiece(id: number): Uint8Array;
  isEndOfGeneration(id: number): boolean;
}

interface Vocabulary {
  /** Each token's bytes; empty for control tokens, which never appear in a document. */
  bytes: Uint8Array[];
  eog: boolean[];
}

const vocabularies = new WeakMap<VocabularyTokenizer, Vocabulary>();

function vocabularyOf(t: VocabularyTokenizer): Vocabulary {
  let v = vocabularies.get(t);
  if (!v) {
    const ids = Array.from({ length: t.vocabSize }, (_, id) => id);
    v = { eog: ids.map((id) => t.isEndOfGeneration(id)), bytes: ids.map((id) => (t.isEndOfGeneration(id) ? new Uint8Array(0) : t.tokenToPiece(id))) };
    vocabularies.set(t, v);
  }
  return v;
}

export class JsonConstraint {
  private states: JsonState[];
  private readonly vocab: Vocabulary;
  private readonly mask: Uint8Array;

  constructor(format: ResponseFormat, tokenizer: VocabularyTokenizer, maxTokens: number) {
    const schema = compileResponseFormat(format);
    this.vocab = vocabularyOf(tokenizer);
    this.mask = new Uint8Array(tokenizer.vocabSize);
    this.states = [initialState(schema)];
    // A budget no document fits in would end the output mid-document.
    const least = minLength(schema);
    if (maxTokens < least) {
      throw new RequestFaultError(`max_tokens ${maxTokens} cannot hold the shortest JSON the response_format accepts (${least} bytes)`, 'invalid_value', 'max_tokens');
    }
  }

  /** The tokens allowed next, `left` tokens of budget remaining (this one included). */
  allowed(left: number): Uint8Array {
    const { bytes, eog } = this.vocab;
    const complete = this.states.some(canEnd);
    let any = false;
    for (let id = 0; id < bytes.length; id++) {
      let ok: boolean;
      if (eog[id]) ok = complete;
      else if (bytes[id]!.length === 0) ok = false;
      else ok = this.fits(this.after(bytes[id]!), left - 1);
      this.mask[id] = ok ? 1 : 0;
      any ||= ok;
    }
    // Nothing fits (a vocabulary without the bytes to close): let generation end rather than fail.
    if (!any) for (let id = 0; id < bytes.length; id++) if (eog[id]) this.mask[id] = 1;
    return this.mask;
  }

  /** Moves past a drawn token. */
  advance(id: number): void {
    if (this.vocab.eog[id]) return;
    const next = this.after(this.vocab.bytes[id]!);
    if (next.length > 0) this.states = next;
  }

  private after(piece: Uint8Array): JsonState[] {
    let states = this.states;
    for (const b of piece) {
      states = stepAll(states, b);
      if (states.length === 0) break;
    }
    return states;
  }

  /** Some reading can still be completed within `tokens` more tokens (one byte each at worst). */
  private fits(states: readonly JsonState[], tokens: number): boolean {
    for (const st of states) if (cost(st) <= tokens) return true;
    return false;
  }
}
