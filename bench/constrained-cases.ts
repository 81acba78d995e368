// The response formats the constrained-decoding benchmark masks with, each with a document it accepts:
// free JSON, a typed record, bounded numbers and a tool call. The documents are what a step-by-step
// mask is timed along; they spend their tokens in keys, strings, numbers and structure in different
// shares, which is what the mask's cost depends on.
import type { ResponseFormat } from '../src/constrained/json-schema.js';

export interface MaskCase {
  name: string;
  format: ResponseFormat;
  document: string;
}

const person = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    city: { enum: ['Paris', 'London', 'Rome', 'Oslo'] },
    bio: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 5 },
  },
  required: ['name', 'age', 'city', 'bio', 'tags'],
  additionalProperties: false,
};

const weatherTool = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'arguments'],
  properties: {
    name: { const: 'get_weather' },
    arguments: { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1, maximum: 14 } }, required: ['city', 'unit'], additionalProperties: false },
  },
};

export const MASK_CASES: readonly MaskCase[] = [
  {
    name: 'json_object',
    format: { type: 'json_object' },
    document: '{"title": "The long walk home", "summary": "Lily walked through the park, past the old oak tree and the pond, until she found her way home.", "pages": 42, "tags": ["story", "children"], "finished": true}',
  },
  {
    name: 'typed record',
    format: { type: 'json_schema', schema: person },
    document: '{"name": "Lily Smith", "age": 37, "city": "Oslo", "bio": "She grew up by the sea and now teaches music to children in the city.", "tags": ["music", "teacher", "sea"]}',
  },
  {
    name: 'bounded numbers',
    format: { type: 'json_schema', schema: { type: 'object', properties: { price: { type: 'number', minimum: 0.5, maximum: 999.75 }, ratio: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 }, count: { type: 'integer', minimum: -40, maximum: 40 } }, required: ['price', 'ratio', 'count'], additionalProperties: false } },
    document: '{"price": 123.25, "ratio": 0.0625, "count": -17}',
  },
  {
    name: 'tool call',
    format: { type: 'json_schema', schema: weatherTool },
    document: '{"name": "get_weather", "arguments": {"city": "San Francisco", "unit": "celsius", "days": 3}}',
  },
];
