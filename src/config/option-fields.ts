// Building blocks of the engine's configuration schema: one zod field per kind of value (integer in a
// range, fraction, choice, ...), each failing with one message that states what the option takes, and the
// registry that carries every option's description and CLI flag next to its type.
import { z } from 'zod';

export interface OptionInfo {
  /** One line for the documentation and the CLI help. */
  description: string;
  /** The CLI flag that sets it, when one does. */
  flag?: string;
  /**
   * Whether engine messages that name the option are reworded to name the flag instead (withFlagNames).
   * Off where the option's name is an everyday word that messages use in other senses.
   */
  reword?: boolean;
}

/** Each option's description and flag, looked up by its field schema. */
export const optionInfo = z.registry<OptionInfo>();

/** The value as a message shows it: strings quoted, so that "" and " " are visible. */
export function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Every issue of a field carries the same message: what the option takes and the value it got. */
function takes(what: string): { error: (issue: { input?: unknown }) => string } {
  return { error: (issue) => `must be ${what}, got ${shown(issue.input)}` };
}

export function integer(min: number, max = Infinity) {
  const m = takes(`an integer ${max < Infinity ? `between ${min} and ${max}` : `of at least ${min}`}`);
  const n = z.number(m).int(m).min(min, m);
  return max < Infinity ? n.max(max, m) : n;
}

/** A number from 0 to 1, both included. */
export function fraction() {
  const m = takes('a number from 0 to 1');
  return z.number(m).min(0, m).max(1, m);
}

export function choice<const T extends readonly [string, ...string[]]>(names: T) {
  return z.enum(names, takes(`one of ${names.join(', ')}`));
}

/** A number from 0 up to, but not including, 1. */
export function fractionBelowOne() {
  const m = takes('a fraction in [0, 1)');
  return z.number(m).min(0, m).lt(1, m);
}

export function anyNumber() {
  return z.number(takes('a number'));
}

export function text() {
  return z.string(takes('a string'));
}

export function flag() {
  return z.boolean(takes('true or false'));
}

export function nonEmptyText() {
  const m = takes('a non-empty string');
  return z.string(m).min(1, m);
}

/** Registers the option's description and flag on its field; returns the field. */
export function option<S extends z.ZodType>(field: S, info: OptionInfo): S {
  optionInfo.add(field, info);
  return field;
}
