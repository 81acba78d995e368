// A JSON Schema validator for the subset constrained decoding enforces, written straight from the
// specification's wording and independent of the decoder's automaton, so tests can hold one to the other.
// Strings are measured in code points (a surrogate pair is one), as JSON Schema counts them.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** True when `v` satisfies `schema`; `strict` is OpenAI's strict mode (no unlisted properties unless allowed). */
export function satisfies(v: unknown, schema: unknown, strict: boolean, root: unknown = schema): boolean {
  if (schema === true || schema === undefined) return true;
  const sc = schema as Record<string, any>;
  if (sc.$ref !== undefined) return satisfies(v, resolve(sc.$ref, root), strict, root);
  if ('const' in sc) return sameJson(v, sc.const);
  if (sc.enum) return sc.enum.some((e: unknown) => sameJson(v, e));
  if (sc.anyOf) return sc.anyOf.some((o: unknown) => satisfies(v, o, strict, root));
  if (Array.isArray(sc.type)) return sc.type.some((t: string) => satisfies(v, { ...sc, type: t }, strict, root));
  const type = sc.type ?? (sc.properties ? 'object' : sc.items !== undefined || sc.prefixItems ? 'array' : undefined);
  switch (type) {
    case undefined:
      return true;
    case 'string': {
      if (typeof v !== 'string') return false;
      const codePoints = [...v].length;
      return codePoints >= (sc.minLength ?? 0) && codePoints <= (sc.maxLength ?? Infinity);
    }
    case 'number':
      return typeof v === 'number' && withinBounds(v, sc);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v) && withinBounds(v, sc);
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'array':
      if (!Array.isArray(v) || v.length < (sc.minItems ?? 0) || v.length > (sc.maxItems ?? Infinity)) return false;
      // prefixItems[i] applies to item i; items to those after the prefix (false: none may follow).
      return v.every((x, i) => {
        const prefix = sc.prefixItems ?? [];
        if (i < prefix.length) return satisfies(x, prefix[i], strict, root);
        return sc.items !== false && satisfies(x, sc.items, strict, root);
      });
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
      const o = v as Record<string, unknown>;
      const props = sc.properties ?? {};
      if (!(sc.required ?? []).every((k: string) => Object.hasOwn(o, k))) return false;
      const extra = sc.additionalProperties ?? (strict ? false : true);
      return Object.entries(o).every(([k, x]) => (Object.hasOwn(props, k) ? satisfies(x, props[k], strict, root) : extra !== false && satisfies(x, extra, strict, root)));
    }
  }
  throw new Error(`validator: unknown type ${String(type)}`);
}

/** minimum, maximum, exclusiveMinimum and exclusiveMaximum, compared with the value as read (a double). */
function withinBounds(v: number, sc: Record<string, any>): boolean {
  if (sc.minimum !== undefined && !(v >= sc.minimum)) return false;
  if (sc.maximum !== undefined && !(v <= sc.maximum)) return false;
  if (sc.exclusiveMinimum !== undefined && !(v > sc.exclusiveMinimum)) return false;
  return sc.exclusiveMaximum === undefined || v < sc.exclusiveMaximum;
}

function resolve(ref: string, root: unknown): unknown {
  if (ref === '#') return root;
  const [, table, name] = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref)!;
  return (root as Record<string, Record<string, unknown>>)[table!]![name!];
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a as Json)) === JSON.stringify(canonical(b as Json));
}

function canonical(v: Json): Json {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k]!)]));
  return v;
}
