// A lazy constraint: the output is free text until it writes a trigger (a tool call's opening tag), and
// from there it must be a JSON document the format accepts followed by a closing text; then it is free
// again, until the next trigger. The tag may come as one token or as several, and a token may carry
// bytes past the trigger: a token that would enter a call with bytes the document cannot take is
// masked out beforehand, so the text inside each call always stays a prefix of a valid one.
import { canEnd, cost, initialState, stepAll, type JsonState } from './json-automaton.js';
import { compileResponseFormat, type ResponseFormat, type Schema } from './json-schema.js';
import { RequestFaultError } from '../engine/error-kind.js';
import { vocabularyOf, type TrieNode, type Vocabulary, type VocabularyTokenizer } from './vocabulary-trie.js';

/** RequestParams.triggeredFormat: `format` applies from each `trigger` in the output to its `close`. */
export interface TriggeredFormat {
  trigger: string;
  close: string;
  format: ResponseFormat;
}

/** Inside a call: still reading the document, or `close` bytes of the closing text matched. */
type Reading = { json: JsonState } | { close: number };

const encoder = new TextEncoder();

export class TriggeredConstraint {
  private readonly vocab: Vocabulary;
  private readonly mask: Uint8Array;
  private readonly trigger: Uint8Array;
  private readonly close: Uint8Array;
  /** KMP fallbacks: fail[k] is the longest proper prefix of the trigger that ends its first k bytes. */
  private readonly fail: number[];
  private readonly schema: Schema;
  /** Tokens whose bytes hold the whole trigger: each may open a call wherever the text stands. */
  private readonly holdingTrigger: readonly number[];
  /** Free text: how much of the trigger its end matches. Inside a call: the live readings. */
  private matched = 0;
  private inside: Reading[] | undefined;

  // A budget too small for a call needs no error: the mask then never lets one open.
  constructor(spec: TriggeredFormat, tokenizer: VocabularyTokenizer) {
    if (typeof spec.trigger !== 'string' || typeof spec.close !== 'string' || spec.trigger === '' || spec.close === '') {
      throw new RequestFaultError('triggeredFormat needs a non-empty trigger and closing text', 'invalid_value', 'triggeredFormat');
    }
    this.schema = compileResponseFormat(spec.format);
    this.vocab = vocabularyOf(tokenizer);
    this.mask = new Uint8Array(tokenizer.vocabSize);
    this.trigger = encoder.encode(spec.trigger);
    this.close = encoder.encode(spec.close);
    this.fail = failureTable(this.trigger);
    this.holdingTrigger = tokensHolding(this.vocab, spec.trigger, this.trigger);
  }

  /** True while the output is inside a call (end-of-generation is masked then). */
  get inCall(): boolean {
    return this.inside !== undefined;
  }

  /** The tokens allowed next, `left` tokens of budget remaining (this one included). */
  allowed(left: number): Uint8Array {
    return this.inside ? this.allowedInside(this.inside, left - 1) : this.allowedFree(left - 1);
  }

  /** Moves past a drawn token. */
  advance(id: number): void {
    if (this.vocab.eog[id]) return;
    for (const b of this.vocab.bytes[id]!) this.step(b);
  }

  private step(b: number): void {
    if (!this.inside) {
      this.matched = this.nextMatch(this.matched, b);
      if (this.matched === this.trigger.length) {
        this.matched = 0;
        this.inside = [{ json: initialState(this.schema) }];
      }
      return;
    }
    const next = this.stepInside(this.inside, b);
    // A closed call, or (never when the mask was obeyed) bytes no call can take: free text again.
    this.inside = next.length === 0 || next.some((r) => this.closed(r)) ? undefined : next;
  }

  private nextMatch(k: number, b: number): number {
    while (k > 0 && this.trigger[k] !== b) k = this.fail[k]!;
    return this.trigger[k] === b ? k + 1 : 0;
  }

  private stepInside(readings: readonly Reading[], b: number): Reading[] {
    const out: Reading[] = [];
    for (const r of readings) {
      if ('json' in r) {
        for (const json of stepAll([r.json], b)) out.push({ json });
        if (canEnd(r.json) && this.close[0] === b) out.push({ close: 1 });
      } else if (this.close[r.close] === b) {
        out.push({ close: r.close + 1 });
      }
    }
    return out;
  }

  private closed(r: Reading): boolean {
    return 'close' in r && r.close === this.close.length;
  }

  /** The fewest bytes that end the call from `r`. */
  private cost(r: Reading): number {
    return 'json' in r ? cost(r.json) + this.close.length : this.close.length - r.close;
  }

  private fits(readings: readonly Reading[], tokens: number): boolean {
    return readings.some((r) => this.closed(r) || this.cost(r) <= tokens);
  }

  private allowedInside(readings: readonly Reading[], tokens: number): Uint8Array {
    this.mask.fill(0);
    // Nothing fits (a vocabulary without the bytes to close): let generation end rather than fail.
    if (!this.walk(this.vocab.trie, readings, tokens)) this.markEndOfGeneration();
    return this.mask;
  }

  /** Marks the tokens below `node` that `readings` can take and still close within `tokens`; true if any. */
  private walk(node: TrieNode, readings: readonly Reading[], tokens: number): boolean {
    let any = false;
    for (const [b, child] of node.next) {
      const next = this.stepInside(readings, b);
      if (next.length === 0) continue;
      if (next.some((r) => this.closed(r))) {
        // The call closes inside these tokens: what follows in them is free text.
        this.markAll(child);
        any = true;
        continue;
      }
      if (child.ids.length > 0 && this.fits(next, tokens)) {
        for (const id of child.ids) this.mask[id] = 1;
        any = true;
      }
      if (child.next.size > 0) any = this.walk(child, next, tokens) || any;
    }
    return any;
  }

  private markAll(node: TrieNode): void {
    for (const id of node.ids) this.mask[id] = 1;
    for (const child of node.next.values()) this.markAll(child);
  }

  private markEndOfGeneration(): void {
    const { eog } = this.vocab;
    for (let id = 0; id < eog.length; id++) if (eog[id]) this.mask[id] = 1;
  }

  /**
   * Free text: every token, except those that would complete the trigger and go on with bytes no call
   * can take (or that cannot close within the budget). Only tokens that hold the whole trigger, or that
   * begin with the rest of a partly written one, can complete it.
   */
  private allowedFree(tokens: number): Uint8Array {
    this.mask.fill(1);
    for (const id of this.holdingTrigger) this.judgeEntry(id, tokens);
    for (let k = this.matched; k > 0; k = this.fail[k]!) {
      const node = this.descend(this.trigger.subarray(k));
      if (node) this.judgeAll(node, tokens);
    }
    return this.mask;
  }

  private descend(bytes: Uint8Array): TrieNode | undefined {
    let node: TrieNode | undefined = this.vocab.trie;
    for (const b of bytes) {
      node = node.next.get(b);
      if (!node) return undefined;
    }
    return node;
  }

  private judgeAll(node: TrieNode, tokens: number): void {
    for (const id of node.ids) this.judgeEntry(id, tokens);
    for (const child of node.next.values()) this.judgeAll(child, tokens);
  }

  /** Masks token `id` out if, from the current free text, its bytes enter a call they cannot continue. */
  private judgeEntry(id: number, tokens: number): void {
    let k = this.matched;
    let readings: Reading[] | undefined;
    for (const b of this.vocab.bytes[id]!) {
      if (!readings) {
        k = this.nextMatch(k, b);
        if (k === this.trigger.length) readings = [{ json: initialState(this.schema) }];
        continue;
      }
      readings = this.stepInside(readings, b);
      if (readings.length === 0) break;
      if (readings.some((r) => this.closed(r))) return;
    }
    if (readings && (readings.length === 0 || !this.fits(readings, tokens))) this.mask[id] = 0;
  }
}

/** Per vocabulary and trigger: a scan of the whole vocabulary, done once rather than per request. */
const holders = new WeakMap<Vocabulary, Map<string, number[]>>();

function tokensHolding(vocab: Vocabulary, key: string, trigger: Uint8Array): number[] {
  let byTrigger = holders.get(vocab);
  if (!byTrigger) holders.set(vocab, (byTrigger = new Map()));
  let ids = byTrigger.get(key);
  if (!ids) {
    ids = [];
    for (let id = 0; id < vocab.bytes.length; id++) if (contains(vocab.bytes[id]!, trigger)) ids.push(id);
    byTrigger.set(key, ids);
  }
  return ids;
}

function failureTable(p: Uint8Array): number[] {
  const fail = [0, 0];
  for (let i = 1, k = 0; i < p.length; i++) {
    while (k > 0 && p[i] !== p[k]) k = fail[k]!;
    if (p[i] === p[k]) k++;
    fail[i + 1] = k;
  }
  return fail;
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
