// An incremental JSON recogniser driven by a compiled schema, one byte at a time. Its state is a stack
// of immutable frames (an open object, array, string, number or literal), so trying a token's bytes
// never disturbs the state it started from. anyOf and the "any value" schema can leave several
// readings alive at once, so a step maps one state to zero or more.
//
// cost(state) is the fewest bytes that complete the document from a state. The mask lets a token
// through only when the rest still fits the token budget, so a document cut by max_tokens is never
// left open: as the budget runs out, only tokens that close it remain.
import { itemSchema, itemsLength, membersLength, minLength, type ArraySchema, type ObjectSchema, type Schema } from './json-schema.js';
import { bytesToFinish, type NumberBounds } from './number-bounds.js';

type NumPhase = 'sign' | 'zero' | 'int' | 'dot' | 'frac' | 'e' | 'esign' | 'exp';

type Frame =
  | { t: 'value'; s: Schema }
  | { t: 'obj'; s: ObjectSchema; phase: 'open' | 'key' | 'inkey' | 'colon' | 'after'; seen: readonly string[]; key: string }
  /** n: the items begun so far. */
  | { t: 'arr'; s: ArraySchema; phase: 'open' | 'after'; n: number }
  /**
   * esc: 1 right after a backslash; hex: \u digits still due; utf8: continuation bytes still due, the next
   * one in [u8lo, u8hi] (narrower than 0x80-0xbf after some lead bytes, which rules out overlong forms,
   * surrogates and code points past U+10FFFF);
   * n: code points begun; min / max: the length bounds (0 and Infinity when none); hiD: this \u escape began with D.
   */
  | { t: 'str'; esc: number; hex: number; utf8: number; u8lo: number; u8hi: number; n: number; min: number; max: number; hiD: boolean }
  /**
   * bounds: null when there are none. int / frac: the digits read before and after the point (only
   * under bounds, which need the value; frac is null before a point).
   */
  | { t: 'num'; integer: boolean; phase: NumPhase; neg: boolean; bounds: NumberBounds | null; int: string; frac: string | null }
  | { t: 'lit'; texts: readonly string[]; pos: number };

export interface JsonState {
  readonly frames: readonly Frame[];
  /** Whitespace bytes in a row: capped, so the model cannot idle in blanks. */
  readonly ws: number;
}

const MAX_WS = 2;
const NUM_ACCEPTING = new Set<NumPhase>(['zero', 'int', 'frac', 'exp']);

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const Q = 0x22;

export function initialState(s: Schema): JsonState {
  return { frames: [{ t: 'value', s }], ws: 0 };
}

/** Feeds one byte to every reading in `states`; returns the readings that survive. */
export function stepAll(states: readonly JsonState[], b: number): JsonState[] {
  const out: JsonState[] = [];
  for (const st of states) {
    if (isWs(b) && !inText(st.frames)) {
      if (st.ws >= MAX_WS) continue;
      for (const frames of feed(st.frames, b)) out.push({ frames, ws: st.ws + 1 });
    } else {
      for (const frames of feed(st.frames, b)) out.push({ frames, ws: 0 });
    }
  }
  return out;
}

/**
 * True when the reading is inside a string without length bounds, between code points (no escape or
 * multi-byte character under way): plain text then leaves it exactly as it is, whatever encloses it.
 */
export function inPlainString(st: JsonState): boolean {
  const top = st.frames.at(-1);
  return top?.t === 'str' && top.esc === 0 && top.hex === 0 && top.utf8 === 0 && top.min === 0 && top.max === Infinity;
}

/** A reading inside an unbounded string and nothing else: what plain text is tested against. */
export function plainStringState(): JsonState {
  return { frames: [{ t: 'str', esc: 0, hex: 0, utf8: 0, u8lo: 0x80, u8hi: 0xbf, n: 0, min: 0, max: Infinity, hiD: false }], ws: 0 };
}

/**
 * True when the reading is inside the key of an object that takes any key: printable text other than
 * a quote or backslash then only lengthens the key, and the reading stays in it.
 */
export function inFreeKey(st: JsonState): boolean {
  const top = st.frames.at(-1);
  return top?.t === 'obj' && top.phase === 'inkey' && top.s.extra !== null;
}

/** A reading inside the key of an object that takes any key, and nothing else. */
export function freeKeyState(): JsonState {
  return { frames: [{ t: 'obj', s: { kind: 'object', props: new Map(), required: [], extra: { kind: 'any' } }, phase: 'inkey', seen: [], key: '' }], ws: 0 };
}

/**
 * For a reading in a free key (inFreeKey): the most bytes left to write after the key grows by any
 * text, so a step whose budget covers it lets every such token through without trying each.
 */
export function freeKeyCostBound(st: JsonState): number {
  const f = st.frames.at(-1) as Extract<Frame, { t: 'obj' }>;
  const missing = f.s.required.filter((r) => !f.seen.includes(r));
  // The key made a new one by its next byte, closed, then its value and the required members left.
  const own = 1 + 2 + minLength(f.s.extra!) + membersLength(f.s, missing, false) + 1;
  let below = 0;
  for (let i = 0; i < st.frames.length - 1; i++) below += frameCost(st.frames[i]!);
  return own + below;
}

/** Inside a string or key, a blank is text, not whitespace between tokens, and is not capped. */
function inText(frames: readonly Frame[]): boolean {
  const top = frames.at(-1);
  return top?.t === 'str' || (top?.t === 'obj' && top.phase === 'inkey');
}

/** True when the document may end here (a top-level number or literal can end without a closing byte). */
export function canEnd(st: JsonState): boolean {
  return closeOpenEnded(st.frames)?.length === 0;
}

/** The fewest bytes that complete the document from `st`. */
export function cost(st: JsonState): number {
  let n = 0;
  for (const f of st.frames) n += frameCost(f);
  return n;
}

/** Pops a number or literal that is complete as it stands (it ends where the next byte is not its own). */
function closeOpenEnded(frames: readonly Frame[]): readonly Frame[] | undefined {
  const top = frames.at(-1);
  if (top?.t === 'num') return numberComplete(top) ? frames.slice(0, -1) : undefined;
  if (top?.t === 'lit') return top.texts.some((x) => x.length === top.pos) ? frames.slice(0, -1) : undefined;
  return frames;
}

const replaceTop = (frames: readonly Frame[], ...top: Frame[]) => [...frames.slice(0, -1), ...top];

function feed(frames: readonly Frame[], b: number): (readonly Frame[])[] {
  const top = frames.at(-1);
  if (!top) return [];
  switch (top.t) {
    case 'value':
      if (isWs(b)) return [frames];
      return startValue(top.s, b).map((f) => (f ? replaceTop(frames, f) : frames.slice(0, -1)));
    case 'obj':
      return feedObject(frames, top, b);
    case 'arr':
      return feedArray(frames, top, b);
    case 'str':
      return feedString(frames, top, b);
    case 'num':
      return feedNumber(frames, top, b);
    case 'lit':
      return feedLiteral(frames, top, b);
  }
}

/** The frames a value of `s` opens with byte `b` (null: the value is already complete). */
function startValue(s: Schema, b: number): (Frame | null)[] {
  switch (s.kind) {
    case 'any':
      if (b === 0x7b) return startValue({ kind: 'object', props: new Map(), required: [], extra: s }, b);
      if (b === 0x5b) return startValue({ kind: 'array', items: s }, b);
      return [...startValue(ANY_STRING, b), ...startValue({ kind: 'number', integer: false }, b), ...startValue({ kind: 'boolean' }, b), ...startValue({ kind: 'null' }, b)];
    case 'object':
      return b === 0x7b ? [{ t: 'obj', s, phase: 'open', seen: [], key: '' }] : [];
    case 'array':
      return b === 0x5b ? [{ t: 'arr', s, phase: 'open', n: 0 }] : [];
    case 'string':
      return b === Q ? [{ t: 'str', esc: 0, hex: 0, utf8: 0, u8lo: 0x80, u8hi: 0xbf, n: 0, min: s.minLength ?? 0, max: s.maxLength ?? Infinity, hiD: false }] : [];
    case 'number': {
      const bounds = s.bounds ?? null;
      const start = { t: 'num' as const, integer: s.integer, bounds, frac: null };
      const f: NumFrame | undefined =
        b === 0x2d ? { ...start, phase: 'sign', neg: true, int: '' } : isDigit(b) ? { ...start, phase: b === 0x30 ? 'zero' : 'int', neg: false, int: bounds ? String.fromCharCode(b) : '' } : undefined;
      return f && numberRest(f) >= 0 ? [f] : [];
    }
    case 'ref':
      return startValue(s.def.schema, b);
    case 'boolean':
      return startLiteral(['true', 'false'], b);
    case 'null':
      return startLiteral(['null'], b);
    case 'literals':
      return startLiteral(s.texts, b);
    case 'anyOf':
      return s.options.flatMap((o) => startValue(o, b));
  }
}

function startLiteral(texts: readonly string[], b: number): (Frame | null)[] {
  const left = texts.filter((x) => x.charCodeAt(0) === b);
  if (left.length === 0) return [];
  // A one-byte literal (an enum of 1, say) could still be the start of a longer one.
  return [{ t: 'lit', texts: left, pos: 1 }];
}

function feedObject(frames: readonly Frame[], f: Extract<Frame, { t: 'obj' }>, b: number): (readonly Frame[])[] {
  const s = f.s;
  const missing = () => s.required.filter((r) => !f.seen.includes(r));
  const set = (changes: Partial<typeof f>) => replaceTop(frames, { ...f, ...changes });
  switch (f.phase) {
    case 'open':
    case 'after':
      if (isWs(b)) return [frames];
      if (b === 0x7d) return missing().length === 0 ? [frames.slice(0, -1)] : [];
      if (f.phase === 'open' && b === Q) return canAddKey(f) ? [set({ phase: 'inkey', key: '' })] : [];
      if (f.phase === 'after' && b === 0x2c) return canAddKey(f) ? [set({ phase: 'key' })] : [];
      return [];
    case 'key':
      if (isWs(b)) return [frames];
      return b === Q ? [set({ phase: 'inkey', key: '' })] : [];
    case 'inkey': {
      if (b === Q) return keyAllowed(f, f.key) ? [set({ phase: 'colon' })] : [];
      if (b < 0x20 || b > 0x7e || b === 0x5c) return [];
      const key = f.key + String.fromCharCode(b);
      return keyPrefixAllowed(f, key) ? [set({ key })] : [];
    }
    case 'colon':
      if (isWs(b)) return [frames];
      if (b !== 0x3a) return [];
      return [[...replaceTop(frames, { ...f, phase: 'after', seen: [...f.seen, f.key], key: '' }), { t: 'value', s: propSchema(s, f.key) }]];
  }
}

const propSchema = (s: ObjectSchema, key: string): Schema => s.props.get(key) ?? s.extra!;

function keyAllowed(f: Extract<Frame, { t: 'obj' }>, key: string): boolean {
  if (f.seen.includes(key)) return false;
  return f.s.props.has(key) || f.s.extra !== null;
}

function keyPrefixAllowed(f: Extract<Frame, { t: 'obj' }>, prefix: string): boolean {
  if (f.s.extra !== null) return true;
  for (const name of f.s.props.keys()) if (name.startsWith(prefix) && !f.seen.includes(name)) return true;
  return false;
}

/** Another key can follow: the object takes keys beyond its properties, or one of them is unused. */
function canAddKey(f: Extract<Frame, { t: 'obj' }>): boolean {
  if (f.s.extra !== null) return true;
  for (const name of f.s.props.keys()) if (!f.seen.includes(name)) return true;
  return false;
}

const ANY_STRING: Schema = { kind: 'string' };

function feedArray(frames: readonly Frame[], f: Extract<Frame, { t: 'arr' }>, b: number): (readonly Frame[])[] {
  if (isWs(b)) return [frames];
  if (b === 0x5d) return f.n >= (f.s.minItems ?? 0) ? [frames.slice(0, -1)] : [];
  if (f.n >= (f.s.maxItems ?? Infinity)) return [];
  const more = { ...f, phase: 'after' as const, n: f.n + 1 };
  const item: Frame = { t: 'value', s: itemSchema(f.s, f.n) };
  if (f.phase === 'after') return b === 0x2c ? [[...replaceTop(frames, more), item]] : [];
  // The first item: its first byte goes to a value frame above the array.
  return feed([...replaceTop(frames, more), item], b);
}

function feedString(frames: readonly Frame[], f: Extract<Frame, { t: 'str' }>, b: number): (readonly Frame[])[] {
  const set = (changes: Partial<typeof f>) => [replaceTop(frames, { ...f, ...changes })];
  const counted = f.min > 0 || f.max < Infinity;
  if (f.esc) {
    if (b === 0x75) return set({ esc: 0, hex: 4 });
    return '"\\/bfnrt'.includes(String.fromCharCode(b)) ? set({ esc: 0 }) : [];
  }
  if (f.hex) {
    if (!isHex(b)) return [];
    // With length bounds a surrogate escape is not taken: a pair of them is one code point, which a
    // count per escape would get wrong.
    if (counted && f.hex === 4) return set({ hex: 3, hiD: b === 0x64 || b === 0x44 });
    if (counted && f.hex === 3 && f.hiD && (!isDigit(b) || b >= 0x38)) return [];
    return set({ hex: f.hex - 1 });
  }
  if (f.utf8) return b >= f.u8lo && b <= f.u8hi ? set({ utf8: f.utf8 - 1, u8lo: 0x80, u8hi: 0xbf }) : [];
  if (b === Q) return f.n >= f.min ? [frames.slice(0, -1)] : [];
  // Every other byte here begins a code point.
  if (f.n >= f.max) return [];
  const n = f.n + 1;
  if (b === 0x5c) return set({ esc: 1, n });
  if (b < 0x20) return [];
  if (b < 0x80) return counted ? set({ n }) : [frames];
  if (b >= 0xc2 && b <= 0xdf) return set({ utf8: 1, n });
  if (b >= 0xe0 && b <= 0xef) return set({ utf8: 2, n, u8lo: b === 0xe0 ? 0xa0 : 0x80, u8hi: b === 0xed ? 0x9f : 0xbf });
  if (b >= 0xf0 && b <= 0xf4) return set({ utf8: 3, n, u8lo: b === 0xf0 ? 0x90 : 0x80, u8hi: b === 0xf4 ? 0x8f : 0xbf });
  return [];
}

type NumFrame = Extract<Frame, { t: 'num' }>;

function feedNumber(frames: readonly Frame[], f: NumFrame, b: number): (readonly Frame[])[] {
  // Under bounds a number takes no exponent (see number-bounds.ts).
  const next = numberStep(f.phase, b, f.integer, f.bounds === null);
  if (next) {
    const g = f.bounds ? withByte(f, next, b) : { ...f, phase: next };
    if (numberRest(g) >= 0) return [replaceTop(frames, g)];
  }
  // Not part of the number: it ends here if it can, and the byte belongs to what encloses it.
  return numberComplete(f) ? feed(frames.slice(0, -1), b) : [];
}

/** The frame after byte `b` (a digit or the point), keeping the digits that bounds are checked on. */
function withByte(f: NumFrame, phase: NumPhase, b: number): NumFrame {
  if (phase === 'dot') return { ...f, phase, frac: '' };
  const digit = String.fromCharCode(b);
  return f.frac === null ? { ...f, phase, int: f.int + digit } : { ...f, phase, frac: f.frac + digit };
}

function numberComplete(f: NumFrame): boolean {
  return NUM_ACCEPTING.has(f.phase) && numberRest(f) === 0;
}

/**
 * The fewest bytes still to write for a complete number (0: it is one already), or -1 when no
 * continuation of what is written is one within the bounds.
 */
function numberRest(f: NumFrame): number {
  if (!f.bounds) return NUM_ACCEPTING.has(f.phase) ? 0 : 1;
  // A frame is asked again for the mask's budget check and when the number ends; frames never change.
  let rest = restOfFrame.get(f);
  if (rest === undefined) {
    const range = f.neg ? f.bounds.negative : f.bounds.positive;
    rest = range ? bytesToFinish(range, f.integer, f.int, f.frac) : -1;
    restOfFrame.set(f, rest);
  }
  return rest;
}

const restOfFrame = new WeakMap<NumFrame, number>();

function numberStep(p: NumPhase, b: number, integer: boolean, exponent: boolean): NumPhase | undefined {
  const digit = isDigit(b);
  switch (p) {
    case 'sign':
      return digit ? (b === 0x30 ? 'zero' : 'int') : undefined;
    case 'zero':
    case 'int':
      if (digit) return p === 'int' ? 'int' : undefined;
      if (integer) return undefined;
      return b === 0x2e ? 'dot' : exponent && (b === 0x65 || b === 0x45) ? 'e' : undefined;
    case 'dot':
      return digit ? 'frac' : undefined;
    case 'frac':
      return digit ? 'frac' : exponent && (b === 0x65 || b === 0x45) ? 'e' : undefined;
    case 'e':
      return digit ? 'exp' : b === 0x2b || b === 0x2d ? 'esign' : undefined;
    case 'esign':
    case 'exp':
      return digit ? 'exp' : undefined;
  }
}

function feedLiteral(frames: readonly Frame[], f: Extract<Frame, { t: 'lit' }>, b: number): (readonly Frame[])[] {
  const left = f.texts.filter((x) => x.length > f.pos && x.charCodeAt(f.pos) === b);
  const out: (readonly Frame[])[] = [];
  if (left.length > 0) {
    const done = left.every((x) => x.length === f.pos + 1);
    out.push(done ? frames.slice(0, -1) : replaceTop(frames, { ...f, texts: left, pos: f.pos + 1 }));
  }
  // A literal complete as it stands ("1" of [1, 10]) ends here, and the byte belongs to what encloses it.
  if (f.texts.some((x) => x.length === f.pos)) out.push(...feed(frames.slice(0, -1), b));
  return out;
}

function frameCost(f: Frame): number {
  switch (f.t) {
    case 'value':
      return minLength(f.s);
    case 'arr': {
      // The items still due, each after a comma (or, the first of all, after the bracket).
      const due = Math.max(0, (f.s.minItems ?? 0) - f.n);
      return 1 + (due > 0 ? itemsLength(f.s, f.n, f.n + due) - (f.n === 0 ? 1 : 0) : 0);
    }
    case 'str':
      return 1 + f.esc + f.hex + f.utf8 + Math.max(0, f.min - f.n);
    case 'num':
      return numberRest(f);
    case 'lit':
      return Math.min(...f.texts.map((x) => x.length - f.pos));
    case 'obj':
      return objectCost(f);
  }
}

/** Bytes to close an object frame, its missing required members included (the value being written above it excluded). */
function objectCost(f: Extract<Frame, { t: 'obj' }>): number {
  const s = f.s;
  const missing = s.required.filter((r) => !f.seen.includes(r));
  switch (f.phase) {
    case 'open':
      return 1 + membersLength(s, missing, true);
    case 'after':
      return 1 + membersLength(s, missing, false);
    case 'key':
      return 1 + (missing.length > 0 ? membersLength(s, missing, true) : cheapestNewMember(f));
    case 'colon': {
      const rest = missing.filter((m) => m !== f.key);
      return 1 + minLength(propSchema(s, f.key)) + 1 + membersLength(s, rest, false);
    }
    case 'inkey': {
      // Finish this key (as a property it can still become, or as another key), then the rest.
      let best = Infinity;
      for (const name of s.props.keys()) {
        if (!name.startsWith(f.key) || f.seen.includes(name)) continue;
        const rest = missing.filter((m) => m !== name);
        best = Math.min(best, name.length - f.key.length + 2 + minLength(s.props.get(name)!) + membersLength(s, rest, false));
      }
      if (s.extra !== null) {
        // A key equal to a property's name is that property; another one byte makes it a new key.
        const extraBytes = s.props.has(f.key) || f.seen.includes(f.key) ? 1 : 0;
        best = Math.min(best, extraBytes + 2 + minLength(s.extra) + membersLength(s, missing, false));
      }
      return best + 1;
    }
  }
}

/** The shortest `"key":value` that could be added (after a comma, with nothing required left). */
function cheapestNewMember(f: Extract<Frame, { t: 'obj' }>): number {
  let best = f.s.extra !== null ? 3 + minLength(f.s.extra) : Infinity;
  for (const [name, sub] of f.s.props) if (!f.seen.includes(name)) best = Math.min(best, name.length + 3 + minLength(sub));
  return best;
}
