// The pre-tokenizer steps llama.cpp implements by hand rather than by a regular expression, written
// here to cut where llama.cpp's do (including their quirks, noted where they differ from the
// expression they stand for).
import { isUnicodeWhitespace, type PieceSplitter } from './llama-regex-split.js';

const LETTER = /^\p{L}$/u;
const NUMBER = /^\p{N}$/u;

const isLetter = (ch: string | undefined) => ch !== undefined && LETTER.test(ch);
const isNumber = (ch: string | undefined) => ch !== undefined && NUMBER.test(ch);
const isSpace = (ch: string | undefined) => ch !== undefined && isUnicodeWhitespace(ch);

/** Cuts `chars` (code points) at the given ends, dropping empty pieces. */
function cut(chars: string[], ends: number[]): string[] {
  const pieces: string[] = [];
  let start = 0;
  for (const end of ends) {
    if (end > start) pieces.push(chars.slice(start, end).join(''));
    start = end;
  }
  if (start < chars.length) pieces.push(chars.slice(start).join(''));
  return pieces;
}

/**
 * Runs of newlines and runs of everything else ("[^\n]+|[\n]+"), used before SentencePiece-style
 * BPE merging (Gemma 4), which must not merge across lines.
 */
export const newlineRuns: PieceSplitter = (piece) => piece.match(/\n+|[^\n]+/g) ?? [];

/**
 * Digit runs cut into groups of three counted from the right (1234567 → 1, 234, 567). As in
 * llama.cpp, the text before a digit run is not a piece of its own: it joins the run's first group
 * ("ab1234" → "ab1", "234"); only the text after the last run stands alone.
 */
export const digitGroupsFromRight: PieceSplitter = (piece) => {
  const chars = Array.from(piece);
  const ends: number[] = [];
  for (let pos = 0; pos < chars.length;) {
    if (!isNumber(chars[pos])) {
      pos++;
      continue;
    }
    const start = pos;
    while (pos < chars.length && isNumber(chars[pos])) pos++;
    const leading = (pos - start) % 3;
    let at = start;
    if (leading > 0) ends.push((at += leading));
    while (at < pos) ends.push((at += 3));
  }
  return cut(chars, ends);
};

const isHan = (ch: string | undefined): boolean => {
  if (ch === undefined) return false;
  const cp = ch.codePointAt(0)!;
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2ebef) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
};
const isNonHanLetter = (ch: string | undefined) => isLetter(ch) && !isHan(ch);
const isLineBreak = (ch: string | undefined) => ch === '\r' || ch === '\n';

/**
 * Kimi K2's pre-tokenizer, which llama.cpp implements as one hand-written scan: Han runs; words of
 * non-Han letters with one optional leading non-letter and an optional English contraction; digits
 * in threes; punctuation runs with an optional leading space and trailing newlines; then whitespace
 * as in Llama 3. Letter case plays no part (llama.cpp's scan does not tell cases apart).
 */
export const kimiK2: PieceSplitter = (piece) => {
  const chars = Array.from(piece);
  const n = chars.length;
  const ends: number[] = [];
  const at = (i: number) => (i < n ? chars[i] : undefined);
  for (let pos = 0; pos < n;) {
    const ch = chars[pos]!;
    if (isHan(ch)) {
      while (isHan(at(pos))) pos++;
      ends.push(pos);
      continue;
    }
    const canLead = !(isLineBreak(ch) || isLetter(ch) || isNumber(ch));
    if (isNonHanLetter(ch) || (canLead && isNonHanLetter(at(pos + 1)))) {
      if (canLead) pos++;
      while (isNonHanLetter(at(pos))) pos++;
      pos += contractionLength(chars, pos);
      ends.push(pos);
      continue;
    }
    if (isNumber(ch)) {
      let groupStart = pos;
      while (isNumber(at(pos))) {
        if (++pos - groupStart >= 3) {
          ends.push(pos);
          groupStart = pos;
        }
      }
      ends.push(pos);
      continue;
    }
    const first = ch === ' ' ? at(pos + 1) : ch;
    const isSymbolLike = (c: string | undefined) => c !== undefined && !(isSpace(c) || isLetter(c) || isNumber(c));
    if (isSymbolLike(first)) {
      if (ch === ' ') pos++;
      while (isSymbolLike(at(pos))) pos++;
      while (isLineBreak(at(pos))) pos++;
      ends.push(pos);
      continue;
    }
    let spaces = 0;
    let afterLastBreak = 0;
    while (isSpace(at(pos + spaces))) {
      if (isLineBreak(at(pos + spaces))) afterLastBreak = pos + spaces + 1;
      spaces++;
    }
    if (afterLastBreak > 0) pos = afterLastBreak;
    else if (spaces > 1 && pos + spaces < n) pos += spaces - 1;
    else if (spaces > 0) pos += spaces;
    else pos++;
    ends.push(pos);
  }
  return cut(chars, ends);
};

/** The length of an English contraction ('s, 't, 'm, 'd, 're, 've, 'll, any case) at `pos`, or 0. */
function contractionLength(chars: string[], pos: number): number {
  if (chars[pos] !== "'" || pos + 1 >= chars.length) return 0;
  const next = chars[pos + 1]!.toLowerCase();
  if ('stmd'.includes(next) && next.length === 1) return 2;
  if (pos + 2 >= chars.length) return 0;
  const two = next + chars[pos + 2]!.toLowerCase();
  return two === 're' || two === 've' || two === 'll' ? 3 : 0;
}
