// Bounds on a JSON number (minimum, maximum and their exclusive forms), checked while the number is
// written: a prefix lives only while some way of finishing it lands in range, and the bytes that finishing
// takes are counted exactly, so a bounded number never dead-ends and never overruns the token budget.
//
// The range is held as exact decimal ends. For "integer" they are the bounds themselves. For "number" they
// are where reading the text back lands in range: a reader takes the nearest double (ties to even), so a
// text reads as `minimum` or more exactly when its value reaches the midpoint between `minimum` and the
// double below it (the midpoint itself counting only when `minimum` is the even one of the two).
//
// A bounded number is written without an exponent. With one, the values a prefix can still reach are no
// longer one interval per count of digits still to come; plain digits reach every value in range anyway.
import { ceilAt, compare, exactValue, floor, bitsOf, midpoint, negate, nextDown, nextUp, pow10, ZERO, type Decimal } from './exact-decimal.js';

/** One end of a range: where it is, and whether that value itself is excluded. */
export interface End {
  readonly at: Decimal;
  readonly open: boolean;
}

/** The magnitudes a number of one sign may have; hi is null when they are unbounded above. */
export interface MagnitudeRange {
  readonly lo: End;
  readonly hi: End | null;
}

/** What the bounds leave to numbers written without and with a minus sign (null: none of that sign). */
export interface NumberBounds {
  readonly positive: MagnitudeRange | null;
  readonly negative: MagnitudeRange | null;
}

const ONE: Decimal = { digits: 1n, scale: 0 };
const closed = (at: Decimal): End => ({ at, open: false });
const whole = (n: bigint): Decimal => ({ digits: n, scale: 0 });

/** Inclusive integer bounds (null: none on that side). */
export function integerBounds(lo: bigint | null, hi: bigint | null): NumberBounds {
  return signed(lo === null ? null : closed(whole(lo)), hi === null ? null : closed(whole(hi)));
}

/**
 * Inclusive bounds on the double a text reads as (undefined: none on that side); both finite, lo <= hi.
 * An exclusive bound is the inclusive one on the next double inward.
 */
export function doubleBounds(lo: number | undefined, hi: number | undefined): NumberBounds {
  const even = (x: number) => (bitsOf(x) & 1n) === 0n;
  const low = lo === undefined ? null : { at: midpoint(exactValue(nextDown(lo)), exactValue(lo)), open: !even(lo) };
  const high = hi === undefined ? null : { at: midpoint(exactValue(hi), exactValue(nextUp(hi))), open: !even(hi) };
  return signed(low, high);
}

/** Splits a range of values into the magnitudes each sign may have. */
function signed(lo: End | null, hi: End | null): NumberBounds {
  const flip = (e: End | null) => (e === null ? null : { at: negate(e.at), open: e.open });
  return { positive: magnitudes(lo, hi), negative: magnitudes(flip(hi), flip(lo)) };
}

function magnitudes(lo: End | null, hi: End | null): MagnitudeRange | null {
  const from = lo === null ? closed(ZERO) : higherLo(lo, closed(ZERO));
  return empty(from, hi) ? null : { lo: from, hi };
}

function higherLo(a: End, b: End): End {
  const c = compare(a.at, b.at);
  return c > 0 ? a : c < 0 ? b : { at: a.at, open: a.open || b.open };
}

function lowerHi(a: End | null, b: End): End {
  if (a === null) return b;
  const c = compare(a.at, b.at);
  return c < 0 ? a : c > 0 ? b : { at: a.at, open: a.open || b.open };
}

function empty(lo: End, hi: End | null): boolean {
  if (hi === null) return false;
  const c = compare(lo.at, hi.at);
  return c > 0 || (c === 0 && (lo.open || hi.open));
}

const atLeast = (x: Decimal, lo: End) => {
  const c = compare(x, lo.at);
  return c > 0 || (c === 0 && !lo.open);
};
const atMost = (x: Decimal, hi: End | null) => {
  if (hi === null) return true;
  const c = compare(x, hi.at);
  return c < 0 || (c === 0 && !hi.open);
};

/** The smallest integer that `lo` admits. */
function firstInteger(lo: End): bigint {
  const c = ceilAt(lo.at, 0);
  return atLeast(whole(c), lo) ? c : c + 1n;
}

/**
 * The fewest digits after the point, at least `least`, with which some value in [lo, hi] is written;
 * -1 when the range is empty. More digits never lose a value, so the answer is found by bisection,
 * between `least` and a count that writes a value in any non-empty range (one past the ends' own digits).
 */
function fractionDigits(lo: End, hi: End | null, least: number): number {
  if (hi === null) return least;
  const writes = (places: number) => {
    let c = ceilAt(lo.at, places);
    if (!atLeast({ digits: c, scale: places }, lo)) c++;
    return atMost({ digits: c, scale: places }, hi);
  };
  // Most prefixes are well inside the range; a bound's own digits (over a thousand for one near zero) are
  // then never needed.
  if (writes(least)) return least;
  let most = Math.max(least, lo.at.scale + 1, hi.at.scale + 1);
  if (!writes(most)) return -1;
  let fewest = least;
  while (fewest < most) {
    const mid = (fewest + most) >> 1;
    if (writes(mid)) most = mid;
    else fewest = mid + 1;
  }
  return most;
}

/**
 * The fewest bytes that finish a number in `range`, given the digits written so far before the point
 * (`int`: '' right after a minus sign) and after it (`frac`: null before a point); 0 when it is in range
 * as it stands, -1 when no way of finishing it is.
 */
export function bytesToFinish(range: MagnitudeRange, integer: boolean, int: string, frac: string | null): number {
  if (frac !== null) {
    // Digits after the point reach [written, written + one unit of the last place).
    const written: Decimal = { digits: BigInt(int + frac), scale: frac.length };
    const end: End = { at: { digits: written.digits + 1n, scale: frac.length }, open: true };
    const places = fractionDigits(higherLo(range.lo, closed(written)), lowerHi(range.hi, end), Math.max(frac.length, 1));
    return places < 0 ? -1 : places - frac.length;
  }
  if (int === '') return shortestMagnitude(range, integer);
  if (int === '0') {
    // A leading 0 is the whole integer part: 0 itself, or 0.something.
    if (atLeast(ZERO, range.lo)) return 0;
    if (integer) return -1;
    const places = fractionDigits(range.lo, lowerHi(range.hi, { at: ONE, open: true }), 1);
    return places < 0 ? -1 : 1 + places;
  }
  // k more digits before the point reach [n × 10^k, (n + 1) × 10^k): disjoint ranges, rising with k.
  const n = BigInt(int);
  for (let k = 0; ; k++) {
    const from = whole(n * pow10(k));
    const to = whole((n + 1n) * pow10(k));
    if (!atMost(from, range.hi)) return -1;
    if (compare(to, range.lo.at) <= 0) continue;
    // The first of them to reach lo: an integer in it, else the next one's first value (which is past
    // lo), else a fraction in it.
    const first = firstInteger(higherLo(range.lo, closed(from)));
    if (first < to.digits && atMost(whole(first), range.hi)) return k;
    if (atMost(whole(n * pow10(k + 1)), range.hi)) return k + 1;
    if (integer) return -1;
    const places = fractionDigits(higherLo(range.lo, closed(from)), lowerHi(range.hi, { at: to, open: true }), 1);
    return places < 0 ? -1 : k + 1 + places;
  }
}

/** Bytes of the shortest magnitude in `range` (an integer where one fits, the one nearest zero). */
function shortestMagnitude(range: MagnitudeRange, integer: boolean): number {
  const first = firstInteger(range.lo);
  if (atMost(whole(first), range.hi)) return String(first).length;
  if (integer) return -1;
  // No integer between: the range lies inside (n, n + 1).
  const places = fractionDigits(range.lo, range.hi, 1);
  return places < 0 ? -1 : String(floor(range.lo.at)).length + 1 + places;
}

/** Bytes of the shortest number within the bounds, its sign included (Infinity when there is none). */
export function shortestNumber(bounds: NumberBounds, integer: boolean): number {
  let best = Infinity;
  const positive = bounds.positive ? shortestMagnitude(bounds.positive, integer) : -1;
  if (positive >= 0) best = positive;
  const negative = bounds.negative ? shortestMagnitude(bounds.negative, integer) : -1;
  if (negative >= 0) best = Math.min(best, 1 + negative);
  return best;
}
