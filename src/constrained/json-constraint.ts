// Constrained decoding for response_format: before each draw, a mask of the vocabulary admits only
// the tokens whose bytes keep the output a prefix of a document the schema accepts, and that leave
// enough of the token budget to close it; end-of-generation only once the document is complete.
// The vocabulary's trie (vocabulary-trie.ts) lets a step walk each shared prefix once and skip every
// token below a prefix the document cannot take.
import { canEnd, cost, freeKeyCostBound, inFreeKey, initialState, inPlainString, stepAll, type JsonState } from './json-automaton.js';
import { compileResponseFormat, minLength, type ResponseFormat } from './json-schema.js';
import { RequestFaultError } from '../engine/error-kind.js';
import { vocabularyOf, type Vocabulary, type VocabularyTokenizer } from './vocabulary-trie.js';
import { ByteTrie } from './byte-trie.js';
import { stringTokensOf, type TextTokens } from './string-tokens.js';

export type { VocabularyTokenizer } from './vocabulary-trie.js';

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
    const { eog, trie } = this.vocab;
    this.mask.fill(0);
    let any = false;
    let walked = trie;
    const text = this.plainText(left - 1);
    if (text) {
      for (const id of text.plain) this.mask[id] = 1;
      any = text.plain.length > 0;
      walked = text.rest;
    }
    any = this.walk(walked, ByteTrie.ROOT, this.states, left - 1) || any;
    if (this.states.some(canEnd)) {
      for (let id = 0; id < eog.length; id++) if (eog[id]) this.mask[id] = 1;
      any = true;
    }
    // Nothing fits (a vocabulary without the bytes to close): let generation end rather than fail.
    if (!any) for (let id = 0; id < eog.length; id++) if (eog[id]) this.mask[id] = 1;
    return this.mask;
  }

  /**
   * Inside a string or a free key, the plain text tokens (string-tokens.ts), when all of them fit the
   * budget: they are allowed without a walk, which then covers only the other tokens.
   */
  private plainText(tokens: number): TextTokens | undefined {
    if (this.states.length !== 1) return undefined;
    const st = this.states[0]!;
    // Plain text leaves a string reading as it is, so it fits exactly when the reading does.
    if (inPlainString(st)) return cost(st) <= tokens ? stringTokensOf(this.vocab).inString : undefined;
    if (inFreeKey(st)) return freeKeyCostBound(st) <= tokens ? stringTokensOf(this.vocab).inKey : undefined;
    return undefined;
  }

  /** Marks the tokens below `node` of `trie` that `states` can take and still close within `tokens`; true if any. */
  private walk(trie: ByteTrie, node: number, states: readonly JsonState[], tokens: number): boolean {
    let any = false;
    const { edgeStart, edgeByte, edgeNode, idStart, idList } = trie;
    for (let e = edgeStart[node]!; e < edgeStart[node + 1]!; e++) {
      const next = stepAll(states, edgeByte[e]!);
      if (next.length === 0) continue;
      const child = edgeNode[e]!;
      if (trie.hasTokens(child) && this.fits(next, tokens)) {
        for (let k = idStart[child]!; k < idStart[child + 1]!; k++) this.mask[idList[k]!] = 1;
        any = true;
      }
      if (trie.hasChildren(child)) any = this.walk(trie, child, next, tokens) || any;
    }
    return any;
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
