// Runs a pre-tokenizer expression the way llama.cpp runs it, so that words are cut where llama.cpp
// cuts them. llama.cpp has two ways to run an expression, and they differ on non-ASCII text:
//
// - An expression that names Unicode categories (\p{L}, \p{N}, \p{P}, \p{M}, \p{S}, and \p{Lu} etc.,
//   which all mean "any letter") is run on a "collapsed" text: every non-ASCII code point is replaced
//   by one stand-in character for its category (non-ASCII whitespace by a vertical tab), and each
//   \p{X} matches that stand-in or the ASCII members of X. So \p{Lu} matches "a", and a class of ASCII
//   ranges never matches a non-ASCII character.
// - An expression without categories is run on the code points themselves, with non-ASCII
//   whitespace replaced by a vertical tab (so "　" no longer matches a literal "　" in a class).
//
// In both, \s means ASCII whitespace (what C++'s std::regex knows), each piece left by an earlier
// expression is matched on its own ($ and lookaheads end at the piece's end), the text between two
// matches is a piece of its own, and an empty match still cuts the text where it matched.

/** What one expression does to one piece of text: the pieces it cuts it into, in order. */
export type PieceSplitter = (piece: string) => string[];

const CATEGORY_ESCAPE = /\\p\{(L[ultmo]?|N|P|M|S)\}/;
const NON_ASCII = /[^\x00-\x7f]/;

/** The stand-in character of a category, and the ASCII members a \p{X} also matches (JS class syntax). */
const CATEGORY_CLASS: Record<string, string> = {
  N: '\\xD10-9',
  L: '\\xD2A-Za-z',
  P: '\\xD3!-#%-*,-/:-;?-@\\[-\\]_{}',
  M: '\\xD4',
  S: '\\xD5$+<->^`|~',
};
const ASCII_SPACE = '\\t\\n\\v\\f\\r ';

/** A splitter for one llama.cpp pre-tokenizer expression (in llama.cpp's regex syntax). */
export function llamaRegexSplitter(expression: string): PieceSplitter {
  if (CATEGORY_ESCAPE.test(expression)) {
    const regex = new RegExp(translate(expression, true), 'g');
    return (piece) => splitCollapsed(piece, regex);
  }
  const regex = new RegExp(translate(expression, false), 'gu');
  return (piece) => cutAt(piece, matchSpans(whitespaceAsVerticalTab(piece), regex));
}

/** Rewrites llama.cpp's expression into a JS one with the same meaning on the text it will see. */
function translate(expression: string, collapsed: boolean): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i]!;
    if (ch === '\\') {
      const next = expression[i + 1];
      if (collapsed && next === 'p') {
        const m = CATEGORY_ESCAPE.exec(expression.slice(i, i + 6));
        if (m && m.index === 0) {
          const members = CATEGORY_CLASS[m[1]!.charAt(0)]!;
          out += inClass ? members : `[${members}]`;
          i += m[0].length - 1;
          continue;
        }
      }
      if (next === 's') {
        out += inClass ? ASCII_SPACE : `[${ASCII_SPACE}]`;
        i++;
        continue;
      }
      if (next === 'S' && !inClass) {
        out += `[^${ASCII_SPACE}]`;
        i++;
        continue;
      }
      out += ch + (next ?? '');
      i++;
      continue;
    }
    if (ch === '[' && !inClass) inClass = true;
    else if (ch === ']' && inClass) inClass = false;
    out += ch;
  }
  return out;
}

/** The text as llama.cpp's expression without categories sees it (same UTF-16 length). */
function whitespaceAsVerticalTab(piece: string): string {
  if (!NON_ASCII.test(piece)) return piece;
  return piece.replace(/[^\x00-\x7f]/g, (ch) => (isUnicodeWhitespace(ch) ? '\v' : ch));
}

function splitCollapsed(piece: string, regex: RegExp): string[] {
  // ASCII text collapses to itself, one UTF-16 unit per code point.
  if (!NON_ASCII.test(piece)) return cutAt(piece, matchSpans(piece, regex));
  const codePoints = Array.from(piece);
  const collapsed = codePoints.map(collapseCodePoint).join('');
  const spans = matchSpans(collapsed, regex);
  const pieces: string[] = [];
  for (let i = 0; i < spans.length; i += 2) pieces.push(codePoints.slice(spans[i], spans[i + 1]).join(''));
  return pieces.filter((p) => p.length > 0);
}

/**
 * Where the matches and the text between them start and end, as [start0, end0, start1, end1, ...]
 * covering the whole text. An empty match cuts the text without making a piece.
 */
function matchSpans(text: string, regex: RegExp): number[] {
  const spans: number[] = [];
  let end = 0;
  for (const m of text.matchAll(regex)) {
    if (m.index > end) spans.push(end, m.index);
    if (m[0].length > 0) spans.push(m.index, m.index + m[0].length);
    end = m.index + m[0].length;
  }
  if (end < text.length) spans.push(end, text.length);
  return spans;
}

function cutAt(piece: string, spans: number[]): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < spans.length; i += 2) pieces.push(piece.slice(spans[i], spans[i + 1]));
  return pieces;
}

// Category stand-ins, cached per code point: looking categories up by regex is slow.
const collapsedCache = new Map<string, string>();
const CATEGORY_TESTS: [RegExp, string][] = [
  [/^\p{L}$/u, '\xD2'], [/^\p{N}$/u, '\xD1'], [/^\p{P}$/u, '\xD3'], [/^\p{M}$/u, '\xD4'], [/^\p{S}$/u, '\xD5'],
];

function collapseCodePoint(ch: string): string {
  if (ch.length === 1 && ch.charCodeAt(0) < 0x80) return ch;
  let stand = collapsedCache.get(ch);
  if (stand === undefined) {
    // A lone surrogate reaches llama.cpp as U+FFFD (a symbol).
    const cp = ch.length === 1 && ch >= '\ud800' && ch <= '\udfff' ? '\ufffd' : ch;
    stand = isUnicodeWhitespace(cp) ? '\v' : CATEGORY_TESTS.find(([test]) => test.test(cp))?.[1] ?? '\xD0';
    collapsedCache.set(ch, stand);
  }
  return stand;
}

const WHITE_SPACE = /^\p{White_Space}$/u;

/** llama.cpp's whitespace: Unicode White_Space (U+0085 is, U+FEFF is not). */
export function isUnicodeWhitespace(ch: string): boolean {
  return WHITE_SPACE.test(ch);
}
