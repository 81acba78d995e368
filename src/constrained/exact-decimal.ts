// Exact decimals, for bounds on JSON numbers: every double is a finite decimal, and so is every number
// text, so comparing the two exactly never depends on floating-point rounding.

/** digits × 10^-scale, scale >= 0, with no trailing zero in digits when scale > 0. */
export interface Decimal {
  readonly digits: bigint;
  readonly scale: number;
}

export const ZERO: Decimal = { digits: 0n, scale: 0 };

const powers: bigint[] = [1n];
/** 10^k as a bigint (k >= 0), kept once computed: bounds ask for the same few powers at every byte. */
export function pow10(k: number): bigint {
  for (let i = powers.length; i <= k; i++) powers.push(powers[i - 1]! * 10n);
  return powers[k]!;
}

export function decimal(digits: bigint, scale = 0): Decimal {
  while (scale > 0 && digits % 10n === 0n) {
    digits /= 10n;
    scale--;
  }
  return { digits, scale };
}

/** -1, 0 or 1 as a is below, equal to or above b. */
export function compare(a: Decimal, b: Decimal): number {
  const s = Math.max(a.scale, b.scale);
  const x = a.digits * pow10(s - a.scale);
  const y = b.digits * pow10(s - b.scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function negate(a: Decimal): Decimal {
  return { digits: -a.digits, scale: a.scale };
}

/** Halfway between a and b. */
export function midpoint(a: Decimal, b: Decimal): Decimal {
  const s = Math.max(a.scale, b.scale);
  // (x + y) / 2 = (x + y) * 5 / 10.
  return decimal((a.digits * pow10(s - a.scale) + b.digits * pow10(s - b.scale)) * 5n, s + 1);
}

/** The smallest integer c with c × 10^-places >= a. */
export function ceilAt(a: Decimal, places: number): bigint {
  if (places >= a.scale) return a.digits * pow10(places - a.scale);
  const unit = pow10(a.scale - places);
  const q = a.digits / unit;
  // BigInt division truncates toward zero: up by one where it cut a positive remainder.
  return a.digits > 0n && q * unit !== a.digits ? q + 1n : q;
}

/** The largest integer at or below a. */
export function floor(a: Decimal): bigint {
  const unit = pow10(a.scale);
  const q = a.digits / unit;
  return a.digits < 0n && q * unit !== a.digits ? q - 1n : q;
}

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** The IEEE-754 bit pattern of x. */
export function bitsOf(x: number): bigint {
  f64[0] = x;
  return u64[0]!;
}

function fromBits(bits: bigint): number {
  u64[0] = bits;
  return f64[0]!;
}

/** The next double above x (Infinity past the largest). */
export function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  const bits = bitsOf(x);
  return fromBits(x > 0 ? bits + 1n : bits - 1n);
}

export function nextDown(x: number): number {
  return -nextUp(-x);
}

/** The exact value of a double; ±Infinity stands for ±2^1024, the next step past the largest double. */
export function exactValue(x: number): Decimal {
  if (x === 0) return ZERO;
  if (!Number.isFinite(x)) {
    if (Number.isNaN(x)) throw new RangeError('NaN has no decimal value');
    return { digits: x > 0 ? 1n << 1024n : -(1n << 1024n), scale: 0 };
  }
  const bits = bitsOf(Math.abs(x));
  const biased = Number(bits >> 52n);
  const fraction = bits & ((1n << 52n) - 1n);
  // x = significand × 2^exponent; subnormals (biased exponent 0) have no implicit leading 1.
  const significand = biased === 0 ? fraction : fraction | (1n << 52n);
  const exponent = Math.max(biased, 1) - 1075;
  const sign = x < 0 ? -1n : 1n;
  if (exponent >= 0) return decimal(sign * (significand << BigInt(exponent)));
  // m / 2^k = m × 5^k / 10^k.
  return decimal(sign * significand * 5n ** BigInt(-exponent), -exponent);
}
