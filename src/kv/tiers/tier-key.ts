// The keys the tiers accept: block hashes (base64url) with an optional short prefix. The tiers treat them as
// opaque, but check them before they reach a file name or a Redis command, so a caller's mistake is named
// here rather than surfacing as a strange path or a key nobody else can find.

export const MAX_TIER_KEY_LENGTH = 256;
const KEY_CHARS = /^[A-Za-z0-9:._-]+$/;

/** Throws a RangeError naming what is wrong with `key`, unless it is a valid tier key. */
export function checkTierKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new RangeError('a tier key must be a non-empty string');
  if (key.length > MAX_TIER_KEY_LENGTH) throw new RangeError(`a tier key is at most ${MAX_TIER_KEY_LENGTH} characters, got ${key.length}`);
  if (!KEY_CHARS.test(key)) throw new RangeError(`a tier key may hold only A-Z a-z 0-9 : . _ -, got ${JSON.stringify(key.slice(0, 40))}`);
}
