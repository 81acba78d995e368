// The subset of JSON Schema that constrained decoding enforces, compiled into a small tree the
// automaton walks. Anything else is refused with an error naming the keyword: a schema keyword the
// output would silently not honour is worse than a 400.
import { RequestFaultError } from '../engine/error-kind.js';

export type Schema =
  | { kind: 'any' }
  | ObjectSchema
  | { kind: 'array'; items: Schema }
  | { kind: 'string' }
  | { kind: 'number'; integer: boolean }
  | { kind: 'boolean' }
  | { kind: 'null' }
  /** enum / const: the allowed values as compact JSON, one char per UTF-8 byte (the automaton reads bytes). */
  | { kind: 'literals'; texts: string[] }
  | { kind: 'anyOf'; options: Schema[] };

export interface ObjectSchema {
  kind: 'object';
  props: Map<string, Schema>;
  required: string[];
  /** The schema of keys not in props; null when no other key is allowed. */
  extra: Schema | null;
}

/** What the engine takes as response_format. */
export type ResponseFormat = { type: 'json_object' } | { type: 'json_schema'; schema: unknown; strict?: boolean };

/** Keywords that only describe (they constrain nothing), so ignoring them is honest. */
const ANNOTATIONS = new Set(['title', 'description', '$schema', '$comment', 'examples', 'default']);
const HANDLED = new Set(['type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'const', 'anyOf']);
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

const ANY_OBJECT: ObjectSchema = { kind: 'object', props: new Map(), required: [], extra: { kind: 'any' } };

function refuse(message: string): never {
  throw new RequestFaultError(`response_format: ${message}`, 'unsupported_parameter', 'response_format');
}

export function compileResponseFormat(f: ResponseFormat): Schema {
  if (typeof f !== 'object' || f === null) refuse('must be { type: "json_object" } or { type: "json_schema", schema }');
  if (f.type === 'json_object') return ANY_OBJECT;
  if (f.type !== 'json_schema') refuse(`type must be "json_object" or "json_schema", got ${JSON.stringify((f as { type?: unknown }).type)}`);
  return compileSchema(f.schema, f.strict === true, 'schema');
}

function compileSchema(s: unknown, strict: boolean, at: string): Schema {
  if (s === true) return { kind: 'any' };
  if (typeof s !== 'object' || s === null || Array.isArray(s)) refuse(`${at} must be a JSON Schema object`);
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!HANDLED.has(k) && !ANNOTATIONS.has(k)) refuse(`the schema keyword "${k}" (at ${at}) is not supported by constrained decoding`);
  }
  if (o.enum !== undefined || o.const !== undefined) {
    const values = o.const !== undefined ? [o.const] : o.enum;
    if (!Array.isArray(values) || values.length === 0) refuse(`${at}.enum must be a non-empty array`);
    return { kind: 'literals', texts: values.map((v) => String.fromCharCode(...new TextEncoder().encode(JSON.stringify(v)))) };
  }
  if (o.anyOf !== undefined) {
    if (!Array.isArray(o.anyOf) || o.anyOf.length === 0) refuse(`${at}.anyOf must be a non-empty array`);
    if (o.type !== undefined || o.properties !== undefined || o.items !== undefined) refuse(`${at}: anyOf beside other keywords is not supported; put them in each option`);
    return { kind: 'anyOf', options: o.anyOf.map((x, i) => compileSchema(x, strict, `${at}.anyOf[${i}]`)) };
  }
  const type = o.type ?? (o.properties !== undefined ? 'object' : o.items !== undefined ? 'array' : undefined);
  if (type === undefined) return { kind: 'any' };
  if (Array.isArray(type)) return { kind: 'anyOf', options: type.map((t) => compileSchema({ ...o, type: t }, strict, at)) };
  if (typeof type !== 'string' || !TYPES.includes(type)) refuse(`${at}.type "${String(type)}" is not one of ${TYPES.join(', ')}`);
  switch (type) {
    case 'object':
      return compileObject(o, strict, at);
    case 'array':
      return { kind: 'array', items: o.items === undefined ? { kind: 'any' } : compileSchema(o.items, strict, `${at}.items`) };
    case 'number':
    case 'integer':
      return { kind: 'number', integer: type === 'integer' };
    default:
      return { kind: type as 'string' | 'boolean' | 'null' };
  }
}

function compileObject(o: Record<string, unknown>, strict: boolean, at: string): ObjectSchema {
  const props = new Map<string, Schema>();
  const given = o.properties ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) refuse(`${at}.properties must be an object`);
  for (const [name, sub] of Object.entries(given)) {
    // Keys are written without escapes, so a name that would need one cannot be produced.
    if (!/^[\x20-\x7e]*$/.test(name) || name.includes('"') || name.includes('\\')) refuse(`${at}.properties: the name ${JSON.stringify(name)} needs escaping, which is not supported`);
    props.set(name, compileSchema(sub, strict, `${at}.properties.${name}`));
  }
  const required = o.required ?? [];
  if (!Array.isArray(required) || !required.every((r) => typeof r === 'string' && props.has(r))) refuse(`${at}.required must list names from properties`);
  const more = o.additionalProperties;
  // JSON Schema allows other keys unless told otherwise; OpenAI's strict mode does not.
  const extra = more === false || (more === undefined && strict) ? null : more === undefined || more === true ? { kind: 'any' as const } : compileSchema(more, strict, `${at}.additionalProperties`);
  return { kind: 'object', props, required: [...new Set(required as string[])], extra };
}

/** The fewest bytes of JSON a value of `s` can take. */
export function minLength(s: Schema): number {
  switch (s.kind) {
    case 'any':
    case 'number':
      return 1;
    case 'object':
      return 2 + membersLength(s, s.required, true);
    case 'array':
    case 'string':
      return 2;
    case 'boolean':
      return 4;
    case 'null':
      return 4;
    case 'literals':
      return Math.min(...s.texts.map((t) => t.length));
    case 'anyOf':
      return Math.min(...s.options.map(minLength));
  }
}

/** Bytes of `"name":value` for each of `names` at their shortest, with the commas between (and before the first unless `first`). */
export function membersLength(s: ObjectSchema, names: readonly string[], first: boolean): number {
  if (names.length === 0) return 0;
  let n = names.length - (first ? 1 : 0);
  for (const name of names) n += name.length + 3 + minLength(s.props.get(name)!);
  return n;
}
