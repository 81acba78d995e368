/** A mistake in how the CLI was called: printed as one line, exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
}

/** Parses an integer option in [min, max], with the option's name in the error. */
export function intOption(name: string, value: string | undefined, fallback: number, min = 0, max = Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max < Infinity ? ` from ${min} to ${max}` : min > -Infinity ? ` >= ${min}` : '';
    throw new CliError(`--${name} must be an integer${range}, got "${value}"`);
  }
  return n;
}

export function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CliError(`--${name} must be a number, got "${value}"`);
  return n;
}

/** Parses an option that names one of a few choices. */
export function choiceOption<T extends string>(name: string, value: string | undefined, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as T)) throw new CliError(`--${name} must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, got "${value}"`);
  return value as T;
}
