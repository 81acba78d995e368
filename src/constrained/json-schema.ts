// The subset of JSON Schema that constrained decoding enforces, compiled into a small tree the
// automaton walks. Anything else is refused with an error naming the keyword: a schema keyword the
// output would silently not honour is worse than a 400.
import { RequestFaultError } from '../engine/error-kind.js';
import { nextDown, nextUp } from './exact-decimal.js';
import { doubleBounds, integerBounds as integerRange, shortestNumber, type NumberBounds } from './number-bounds.js';

export type Schema =
  | { kind: 'any' }
  | ObjectSchema
  | ArraySchema
  | { kind: 'string'; minLength?: number; maxLength?: number }
  /** bounds: what minimum, maximum and their exclusive forms leave (absent: no bound). */
  | { kind: 'number'; integer: boolean; bounds?: NumberBounds }
  | { kind: 'boolean' }
  | { kind: 'null' }
  /** enum / const: the allowed values as compact JSON, one char per UTF-8 byte (the automaton reads bytes). */
  | { kind: 'literals'; texts: string[] }
  | { kind: 'anyOf'; options: Schema[] }
  /** $ref: each definition is compiled once and shared, so a recursive schema is a cycle, not an endless tree. */
  | { kind: 'ref'; def: Definition };

export interface ArraySchema {
  kind: 'array';
  /** prefixItems: the schemas of the first items, one each; items: the schema of those after them. */
  prefix?: Schema[];
  items: Schema;
  minItems?: number;
  /** Infinity when unbounded. */
  maxItems?: number;
}

export interface Definition {
  ref: string;
  /** Filled once the definition is compiled (a reference inside it may be met before then). */
  schema: Schema;
  /** The fewest bytes of a value of it, found after every definition is compiled. */
  min: number;
}

/**
 * What compiling a schema shares across its parts: the root of the resource being read ("#" refs point
 * into it; a subschema with $id starts a new one, as a tool's parameters do), its definitions by ref, and
 * every definition of the whole schema.
 */
interface Context {
  root: unknown;
  strict: boolean;
  defs: Map<string, Definition>;
  all: Definition[];
}

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
const HANDLED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'prefixItems', 'enum', 'const', 'anyOf', '$ref', '$defs', 'definitions', '$id',
  'minItems', 'maxItems', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
]);
const BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const;
/** Keywords that bound values of one type. */
const TYPED = ['minItems', 'maxItems', 'prefixItems', 'minLength', 'maxLength', ...BOUNDS];
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

const ANY_OBJECT: ObjectSchema = { kind: 'object', props: new Map(), required: [], extra: { kind: 'any' } };

function refuse(message: string): never {
  throw new RequestFaultError(`response_format: ${message}`, 'unsupported_parameter', 'response_format');
}

export function compileResponseFormat(f: ResponseFormat): Schema {
  if (typeof f !== 'object' || f === null) refuse('must be { type: "json_object" } or { type: "json_schema", schema }');
  if (f.type === 'json_object') return ANY_OBJECT;
  if (f.type !== 'json_schema') refuse(`type must be "json_object" or "json_schema", got ${JSON.stringify((f as { type?: unknown }).type)}`);
  const cx: Context = { root: f.schema, strict: f.strict === true, defs: new Map(), all: [] };
  const schema = compileSchema(f.schema, cx, 'schema');
  settleDefinitions(cx);
  return schema;
}

/** The definition a local $ref names, compiled on first use. */
function resolveRef(ref: unknown, cx: Context, at: string): Definition {
  if (typeof ref !== 'string') refuse(`the schema keyword "$ref" (at ${at}) must be a string`);
  let def = cx.defs.get(ref);
  if (def) return def;
  let target: unknown;
  if (ref === '#') target = cx.root;
  else {
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    if (!m) refuse(`the schema keyword "$ref" (at ${at}) only supports local references "#", "#/$defs/NAME" and "#/definitions/NAME", got ${JSON.stringify(ref)}`);
    const name = m[2]!.replace(/~1/g, '/').replace(/~0/g, '~');
    const table = (cx.root as Record<string, unknown>)[m[1]!];
    target = typeof table === 'object' && table !== null && Object.hasOwn(table, name) ? (table as Record<string, unknown>)[name] : undefined;
    if (target === undefined) refuse(`"$ref" (at ${at}) names ${JSON.stringify(ref)}, which the schema does not define`);
  }
  def = { ref, schema: { kind: 'any' }, min: Infinity };
  cx.defs.set(ref, def);
  cx.all.push(def);
  def.schema = compileSchema(target, cx, ref);
  return def;
}

/**
 * Finds each definition's shortest value by relaxation (a shortest value never nests a definition inside
 * itself, so the estimates settle), and refuses definitions the automaton could not walk: one with no finite
 * value, or one that reaches itself through refs and anyOf alone, before any byte is read.
 */
function settleDefinitions(cx: Context): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const def of cx.all) {
      const n = minLength(def.schema);
      if (n < def.min) (def.min = n), (changed = true);
    }
  }
  for (const def of cx.all) {
    if (def.min === Infinity) refuse(`"$ref" ${JSON.stringify(def.ref)} has no finite value (it always contains itself)`);
    if (reachesWithoutNesting(def.schema, def, new Set())) refuse(`"$ref" ${JSON.stringify(def.ref)} refers to itself without nesting inside an object or array`);
  }
}

function reachesWithoutNesting(s: Schema, target: Definition, seen: Set<Definition>): boolean {
  if (s.kind === 'anyOf') return s.options.some((o) => reachesWithoutNesting(o, target, seen));
  if (s.kind !== 'ref') return false;
  if (s.def === target) return true;
  if (seen.has(s.def)) return false;
  seen.add(s.def);
  return reachesWithoutNesting(s.def.schema, target, seen);
}

/** A non-negative integer keyword, or undefined when absent. */
function count(o: Record<string, unknown>, key: string, at: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) refuse(`the schema keyword "${key}" (at ${at}) must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

function countRange(o: Record<string, unknown>, lowKey: string, highKey: string, at: string): [number, number] {
  const low = count(o, lowKey, at) ?? 0;
  const high = count(o, highKey, at) ?? Infinity;
  if (low > high) refuse(`${at}: "${lowKey}" ${low} is greater than "${highKey}" ${high}`);
  return [low, high];
}

function checkBoundValues(o: Record<string, unknown>, at: string): void {
  for (const k of BOUNDS) {
    if (o[k] !== undefined && (typeof o[k] !== 'number' || !Number.isFinite(o[k]))) refuse(`the schema keyword "${k}" (at ${at}) must be a finite number, got ${JSON.stringify(o[k])}`);
  }
}

const boundsNamed = (o: Record<string, unknown>) => BOUNDS.filter((k) => o[k] !== undefined).map((k) => `"${k}" ${String(o[k])}`).join(', ');

/** Integer bounds as inclusive bigints (exclusive ones moved inward). */
function integerBounds(o: Record<string, unknown>, at: string): NumberBounds | undefined {
  checkBoundValues(o, at);
  const num = (k: string) => o[k] as number | undefined;
  const los: bigint[] = [];
  const his: bigint[] = [];
  if (num('minimum') !== undefined) los.push(BigInt(Math.ceil(num('minimum')!)));
  if (num('exclusiveMinimum') !== undefined) los.push(BigInt(Math.floor(num('exclusiveMinimum')!)) + 1n);
  if (num('maximum') !== undefined) his.push(BigInt(Math.floor(num('maximum')!)));
  if (num('exclusiveMaximum') !== undefined) his.push(BigInt(Math.ceil(num('exclusiveMaximum')!)) - 1n);
  if (los.length === 0 && his.length === 0) return undefined;
  const lo = los.length ? los.reduce((a, b) => (a > b ? a : b)) : null;
  const hi = his.length ? his.reduce((a, b) => (a < b ? a : b)) : null;
  if (lo !== null && hi !== null && lo > hi) refuse(`${at}: no integer satisfies its bounds (${boundsNamed(o)})`);
  return integerRange(lo, hi);
}

/**
 * Bounds on a number as inclusive bounds on the double its text reads as: an exclusive bound is the
 * next double inward, so that a text reading as the bound itself is outside.
 */
function numberBounds(o: Record<string, unknown>, at: string): NumberBounds | undefined {
  checkBoundValues(o, at);
  const num = (k: string) => o[k] as number | undefined;
  const los: number[] = [];
  const his: number[] = [];
  if (num('minimum') !== undefined) los.push(num('minimum')!);
  if (num('exclusiveMinimum') !== undefined) los.push(nextUp(num('exclusiveMinimum')!));
  if (num('maximum') !== undefined) his.push(num('maximum')!);
  if (num('exclusiveMaximum') !== undefined) his.push(nextDown(num('exclusiveMaximum')!));
  if (los.length === 0 && his.length === 0) return undefined;
  const lo = los.length ? Math.max(...los) : undefined;
  const hi = his.length ? Math.min(...his) : undefined;
  // Past the largest double only a text that overflows to Infinity would do.
  if (lo === Infinity || hi === -Infinity || (lo !== undefined && hi !== undefined && lo > hi)) refuse(`${at}: no finite number satisfies its bounds (${boundsNamed(o)})`);
  return doubleBounds(lo, hi);
}

function compileSchema(s: unknown, cx: Context, at: string): Schema {
  if (s === true) return { kind: 'any' };
  if (typeof s !== 'object' || s === null || Array.isArray(s)) refuse(`${at} must be a JSON Schema object`);
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!HANDLED.has(k) && !ANNOTATIONS.has(k)) refuse(`the schema keyword "${k}" (at ${at}) is not supported by constrained decoding`);
  }
  for (const k of ['$defs', 'definitions']) {
    if (o[k] !== undefined && (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k]))) refuse(`the schema keyword "${k}" (at ${at}) must be an object of schemas`);
  }
  if (o.$id !== undefined) {
    if (typeof o.$id !== 'string') refuse(`the schema keyword "$id" (at ${at}) must be a string`);
    if (s !== cx.root) cx = { ...cx, root: s, defs: new Map() };
  }
  if (o.$ref !== undefined) {
    const beside = Object.keys(o).filter((k) => !['$ref', '$defs', 'definitions', '$id'].includes(k) && !ANNOTATIONS.has(k));
    if (beside.length > 0) refuse(`${at}: "$ref" beside other keywords (${beside.join(', ')}) is not supported`);
    return { kind: 'ref', def: resolveRef(o.$ref, cx, at) };
  }
  // A bound the compiled tree would not carry (no type to attach it to) would be silently dropped.
  const typed = TYPED.filter((k) => o[k] !== undefined);
  const loose = o.enum !== undefined || o.const !== undefined || o.anyOf !== undefined || (o.type === undefined && o.items === undefined && o.prefixItems === undefined);
  if (typed.length > 0 && loose) refuse(`the schema keyword "${typed[0]}" (at ${at}) is supported only beside a "type" (not beside enum, const or anyOf, nor alone)`);
  if (o.enum !== undefined || o.const !== undefined) {
    const values = o.const !== undefined ? [o.const] : o.enum;
    if (!Array.isArray(values) || values.length === 0) refuse(`${at}.enum must be a non-empty array`);
    return { kind: 'literals', texts: values.map((v) => String.fromCharCode(...new TextEncoder().encode(JSON.stringify(v)))) };
  }
  if (o.anyOf !== undefined) {
    if (!Array.isArray(o.anyOf) || o.anyOf.length === 0) refuse(`${at}.anyOf must be a non-empty array`);
    if (o.type !== undefined || o.properties !== undefined || o.items !== undefined) refuse(`${at}: anyOf beside other keywords is not supported; put them in each option`);
    return { kind: 'anyOf', options: o.anyOf.map((x, i) => compileSchema(x, cx, `${at}.anyOf[${i}]`)) };
  }
  const type = o.type ?? (o.properties !== undefined ? 'object' : o.items !== undefined || o.prefixItems !== undefined ? 'array' : undefined);
  if (type === undefined) return { kind: 'any' };
  if (Array.isArray(type)) return { kind: 'anyOf', options: type.map((t) => compileSchema({ ...o, type: t }, cx, at)) };
  if (typeof type !== 'string' || !TYPES.includes(type)) refuse(`${at}.type "${String(type)}" is not one of ${TYPES.join(', ')}`);
  switch (type) {
    case 'object':
      return compileObject(o, cx, at);
    case 'array': {
      const [minItems, maxItems] = countRange(o, 'minItems', 'maxItems', at);
      const given = o.prefixItems ?? [];
      if (!Array.isArray(given)) refuse(`the schema keyword "prefixItems" (at ${at}) must be an array of schemas`);
      const prefix = given.map((x, i) => compileSchema(x, cx, `${at}.prefixItems[${i}]`));
      // items: false ends the array after its prefix.
      const closed = o.items === false;
      const last = closed ? Math.min(maxItems, prefix.length) : maxItems;
      if (minItems > last) refuse(`${at}: "minItems" ${minItems} is more than the ${prefix.length} items "prefixItems" allows with "items": false`);
      const items = o.items === undefined || closed ? ({ kind: 'any' } as const) : compileSchema(o.items, cx, `${at}.items`);
      return { kind: 'array', prefix, items, minItems, maxItems: last };
    }
    case 'string': {
      const [minLength, maxLength] = countRange(o, 'minLength', 'maxLength', at);
      return { kind: 'string', minLength, maxLength };
    }
    case 'number':
    case 'integer': {
      const integer = type === 'integer';
      const bounds = integer ? integerBounds(o, at) : numberBounds(o, at);
      return bounds ? { kind: 'number', integer, bounds } : { kind: 'number', integer };
    }
    default:
      return { kind: type as 'string' | 'boolean' | 'null' };
  }
}

function compileObject(o: Record<string, unknown>, cx: Context, at: string): ObjectSchema {
  const strict = cx.strict;
  const props = new Map<string, Schema>();
  const given = o.properties ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) refuse(`${at}.properties must be an object`);
  for (const [name, sub] of Object.entries(given)) {
    // Keys are written without escapes, so a name that would need one cannot be produced.
    if (!/^[\x20-\x7e]*$/.test(name) || name.includes('"') || name.includes('\\')) refuse(`${at}.properties: the name ${JSON.stringify(name)} needs escaping, which is not supported`);
    props.set(name, compileSchema(sub, cx, `${at}.properties.${name}`));
  }
  const required = o.required ?? [];
  if (!Array.isArray(required) || !required.every((r) => typeof r === 'string' && props.has(r))) refuse(`${at}.required must list names from properties`);
  const more = o.additionalProperties;
  // JSON Schema allows other keys unless told otherwise; OpenAI's strict mode does not.
  const extra = more === false || (more === undefined && strict) ? null : more === undefined || more === true ? { kind: 'any' as const } : compileSchema(more, cx, `${at}.additionalProperties`);
  return { kind: 'object', props, required: [...new Set(required as string[])], extra };
}

/** The fewest bytes of JSON a value of `s` can take. */
export function minLength(s: Schema): number {
  switch (s.kind) {
    case 'any':
      return 1;
    case 'number':
      return s.bounds ? shortestNumber(s.bounds, s.integer) : 1;
    case 'object':
      return 2 + membersLength(s, s.required, true);
    case 'array': {
      const n = s.minItems ?? 0;
      return 2 + (n > 0 ? itemsLength(s, 0, n) - 1 : 0);
    }
    case 'string':
      return 2 + (s.minLength ?? 0);
    case 'ref':
      return s.def.min;
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

/** The schema of the array's item at `index` (from 0). */
export function itemSchema(s: ArraySchema, index: number): Schema {
  return s.prefix?.[index] ?? s.items;
}

/** Bytes of items `from` to `to` (exclusive) at their shortest, each with one comma (or the opening bracket's place). */
export function itemsLength(s: ArraySchema, from: number, to: number): number {
  let n = 0;
  const prefixEnd = Math.min(to, s.prefix?.length ?? 0);
  for (let i = from; i < prefixEnd; i++) n += minLength(s.prefix![i]!) + 1;
  const rest = to - Math.max(from, prefixEnd);
  return rest > 0 ? n + rest * (minLength(s.items) + 1) : n;
}
