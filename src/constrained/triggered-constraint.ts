// A lazy constraint: the output is free text until it writes a trigger (a tool call's opening tag), and
// from there it must be a JSON document the format accepts followed by a closing text; then it is free
// again, until the next trigger. The tag may come as one token or as several, and a token may carry
// bytes past the trigger: a token that would enter a call with bytes the document cannot take is
// masked out beforehand, so the text inside each call always stays a prefix of a valid one.
// Conventions differ in three ways the format states: a call may open anywhere or only at the reply's
// start (Llama 3's JSON: then only `gap` characters may come before it, or between calls); the trigger
// may be the document's own first bytes ("{") rather than a tag before it; and the closing text may be
// empty, the document's end being the call's end. A trigger that the vocabulary has as a control token
// ([TOOL_CALLS] in Mistral's) has no bytes in generated text, so that token opens a call by its id.
import { canEnd, cost, initialState, stepAll, type JsonState } from './json-automaton.js';
import { compileResponseFormat, type ResponseFormat, type Schema } from './json-schema.js';
import { RequestFaultError } from '../engine/error-kind.js';
import { vocabularyOf, type Vocabulary, type VocabularyTokenizer } from './vocabulary-trie.js';
import { ByteTrie } from './byte-trie.js';

/** RequestParams.triggeredFormat: `format` applies from each `trigger` in the output to its `close`. */
export interface TriggeredFormat {
  trigger: string;
  /** The text after each document; '' when the document's end ends the call. */
  close: string;
  format: ResponseFormat;
  /**
   * When set, a call opens only where the free text since the reply's start (or since the last call)
   * is made of these characters: a convention whose calls begin the reply. The trigger must not start
   * with one of them.
   */
  gap?: string;
  /** The trigger is the start of the document itself (its bytes are read as JSON too), not a tag before it. */
  triggerInDocument?: boolean;
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
  /** Control tokens whose text is the trigger: no bytes, each opens a call by itself. */
  private readonly triggerTokens: ReadonlySet<number>;
  /** The bytes that may come before a call, when calls open only at the start (TriggeredFormat.gap). */
  private readonly gap: ReadonlySet<number> | undefined;
  private readonly triggerInDocument: boolean;
  private readonly triggerText: string;
  /** Free text: how much of the trigger its end matches. Inside a call: the live readings. */
  private matched = 0;
  /** With `gap`: whether the free text so far is all gap, so a call may still open. */
  private atStart = true;
  private inside: Reading[] | undefined;

  // A budget too small for a call needs no error: the mask then never lets one open.
  constructor(spec: TriggeredFormat, tokenizer: VocabularyTokenizer) {
    if (typeof spec.trigger !== 'string' || typeof spec.close !== 'string' || spec.trigger === '') {
      throw new RequestFaultError('triggeredFormat needs a non-empty trigger and a closing text (a string, empty when the document ends the call)', 'invalid_value', 'triggeredFormat');
    }
    if (spec.gap !== undefined && (typeof spec.gap !== 'string' || spec.gap.includes(spec.trigger[0]!))) {
      throw new RequestFaultError('triggeredFormat.gap must be a string without the trigger\'s first character', 'invalid_value', 'triggeredFormat');
    }
    this.schema = compileResponseFormat(spec.format);
    this.vocab = vocabularyOf(tokenizer);
    this.mask = new Uint8Array(tokenizer.vocabSize);
    this.trigger = encoder.encode(spec.trigger);
    this.close = encoder.encode(spec.close);
    this.fail = failureTable(this.trigger);
    this.holdingTrigger = tokensHolding(this.vocab, spec.trigger, this.trigger);
    this.triggerTokens = new Set(controlTokensSpelling(this.vocab, tokenizer, spec.trigger));
    this.gap = spec.gap === undefined ? undefined : new Set(encoder.encode(spec.gap));
    this.triggerInDocument = spec.triggerInDocument === true;
    this.triggerText = spec.trigger;
  }

  /**
   * The text a generated token adds besides its bytes: the trigger, for a control token that spells it
   * (generated text leaves control tokens out, but the reply's reader must see where the call opened).
   */
  controlText(id: number): string {
    return this.triggerTokens.has(id) ? this.triggerText : '';
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
    if (this.triggerTokens.has(id) && !this.inside && this.atStart) {
      this.matched = 0;
      this.enter(this.opened());
      return;
    }
    for (const b of this.vocab.bytes[id]!) this.step(b);
  }

  private step(b: number): void {
    if (!this.inside) {
      const free = this.freeStep({ matched: this.matched, atStart: this.atStart }, b);
      this.matched = free.matched;
      this.atStart = free.atStart;
      if (this.matched === this.trigger.length) {
        this.matched = 0;
        this.enter(this.opened());
      }
      return;
    }
    this.enter(this.stepInside(this.inside, b));
  }

  /** The readings after a step inside a call: a closed call, or (never when the mask was obeyed) none, is free text again. */
  private enter(next: Reading[]): void {
    const done = next.length === 0 || next.some((r) => this.closed(r));
    this.inside = done ? undefined : next;
    // After a call the text may lead to the next one (Llama's "; ").
    if (done) this.atStart = true;
  }

  /** The readings of a call just opened: the trigger read as the document's start where it is one. */
  private opened(): Reading[] {
    let json = [initialState(this.schema)];
    if (this.triggerInDocument) for (const b of this.trigger) json = stepAll(json, b);
    return json.map((j) => ({ json: j }));
  }

  /** Free text: the trigger matched so far after byte `b` (anywhere, or only from a gap-only start). */
  private freeStep(s: { matched: number; atStart: boolean }, b: number): { matched: number; atStart: boolean } {
    if (!this.gap) return { matched: this.nextMatch(s.matched, b), atStart: true };
    if (s.matched > 0) return this.trigger[s.matched] === b ? { matched: s.matched + 1, atStart: true } : { matched: 0, atStart: false };
    if (s.atStart && this.trigger[0] === b) return { matched: 1, atStart: true };
    return { matched: 0, atStart: s.atStart && this.gap.has(b) };
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
        if (canEnd(r.json) && this.close.length > 0 && this.close[0] === b) out.push({ close: 1 });
      } else if (this.close[r.close] === b) {
        out.push({ close: r.close + 1 });
      }
    }
    return out;
  }

  private closed(r: Reading): boolean {
    if ('json' in r) return this.close.length === 0 && canEnd(r.json);
    return r.close === this.close.length;
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
    if (!this.walk(ByteTrie.ROOT, readings, tokens)) this.markEndOfGeneration();
    return this.mask;
  }

  /** Marks the tokens below `node` that `readings` can take and still close within `tokens`; true if any. */
  private walk(node: number, readings: readonly Reading[], tokens: number): boolean {
    const trie = this.vocab.trie;
    let any = false;
    for (let e = trie.edgeStart[node]!; e < trie.edgeStart[node + 1]!; e++) {
      const next = this.stepInside(readings, trie.edgeByte[e]!);
      if (next.length === 0) continue;
      const child = trie.edgeNode[e]!;
      if (next.some((r) => this.closed(r))) {
        // The call closes inside these tokens: what follows in them is free text.
        trie.forEachBelow(child, (id) => (this.mask[id] = 1));
        any = true;
        continue;
      }
      if (trie.hasTokens(child) && this.fits(next, tokens)) {
        for (let k = trie.idStart[child]!; k < trie.idStart[child + 1]!; k++) this.mask[trie.idList[k]!] = 1;
        any = true;
      }
      if (trie.hasChildren(child)) any = this.walk(child, next, tokens) || any;
    }
    return any;
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
    // Past the reply's start, with calls only at the start: nothing can open one any more.
    if (!this.atStart) return this.mask;
    for (const id of this.triggerTokens) if (!this.fits(this.opened(), tokens)) this.mask[id] = 0;
    for (const id of this.holdingTrigger) this.judgeEntry(id, tokens);
    for (let k = this.matched; k > 0; k = this.gap ? 0 : this.fail[k]!) {
      const node = this.vocab.trie.descend(this.trigger.subarray(k));
      if (node >= 0) this.vocab.trie.forEachBelow(node, (id) => this.judgeEntry(id, tokens));
    }
    return this.mask;
  }

  /** Masks token `id` out if, from the current free text, its bytes enter a call they cannot continue. */
  private judgeEntry(id: number, tokens: number): void {
    let free = { matched: this.matched, atStart: this.atStart };
    let readings: Reading[] | undefined;
    for (const b of this.vocab.bytes[id]!) {
      if (!readings) {
        free = this.freeStep(free, b);
        if (free.matched === this.trigger.length) readings = this.opened();
        continue;
      }
      readings = this.stepInside(readings, b);
      if (readings.length === 0) break;
      if (readings.some((r) => this.closed(r))) return;
    }
    if (readings && (readings.length === 0 || !this.fits(readings, tokens))) this.mask[id] = 0;
  }
}

/** Per vocabulary and trigger: scans of the whole vocabulary, done once rather than per request. */
const scans = new WeakMap<Vocabulary, Map<string, number[]>>();

function scanOnce(vocab: Vocabulary, key: string, scan: () => number[]): number[] {
  let byKey = scans.get(vocab);
  if (!byKey) scans.set(vocab, (byKey = new Map()));
  let ids = byKey.get(key);
  if (!ids) byKey.set(key, (ids = scan()));
  return ids;
}

function tokensHolding(vocab: Vocabulary, key: string, trigger: Uint8Array): number[] {
  return scanOnce(vocab, `holding:${key}`, () => {
    const ids: number[] = [];
    for (let id = 0; id < vocab.bytes.length; id++) if (contains(vocab.bytes[id]!, trigger)) ids.push(id);
    return ids;
  });
}

/** Control tokens (no bytes in generated text) whose text is `trigger`. */
function controlTokensSpelling(vocab: Vocabulary, tokenizer: VocabularyTokenizer, trigger: string): number[] {
  return scanOnce(vocab, `control:${trigger}`, () => {
    const ids: number[] = [];
    const decoder = new TextDecoder();
    for (let id = 0; id < vocab.bytes.length; id++) {
      if (vocab.bytes[id]!.length === 0 && !vocab.eog[id] && decoder.decode(tokenizer.tokenToPiece(id, true)) === trigger) ids.push(id);
    }
    return ids;
  });
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
