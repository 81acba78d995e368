// GGML tensor types and GGUF metadata value types, with the block geometry each tensor type uses.
// Figures follow the GGUF specification and ggml's type traits.

export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_NL = 20,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
}

export interface TypeTraits {
  name: string;
  /** Elements per block (1 for plain types). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const TRAITS: Partial<Record<GGMLType, TypeTraits>> = {
  [GGMLType.F32]: { name: 'F32', blockSize: 1, typeSize: 4 },
  [GGMLType.F16]: { name: 'F16', blockSize: 1, typeSize: 2 },
  [GGMLType.BF16]: { name: 'BF16', blockSize: 1, typeSize: 2 },
  [GGMLType.F64]: { name: 'F64', blockSize: 1, typeSize: 8 },
  [GGMLType.I8]: { name: 'I8', blockSize: 1, typeSize: 1 },
  [GGMLType.I16]: { name: 'I16', blockSize: 1, typeSize: 2 },
  [GGMLType.I32]: { name: 'I32', blockSize: 1, typeSize: 4 },
  [GGMLType.I64]: { name: 'I64', blockSize: 1, typeSize: 8 },
  [GGMLType.Q4_0]: { name: 'Q4_0', blockSize: 32, typeSize: 2 + 16 },
  [GGMLType.Q4_1]: { name: 'Q4_1', blockSize: 32, typeSize: 2 + 2 + 16 },
  [GGMLType.Q5_0]: { name: 'Q5_0', blockSize: 32, typeSize: 2 + 4 + 16 },
  [GGMLType.Q5_1]: { name: 'Q5_1', blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  [GGMLType.Q8_0]: { name: 'Q8_0', blockSize: 32, typeSize: 2 + 32 },
  [GGMLType.Q8_1]: { name: 'Q8_1', blockSize: 32, typeSize: 4 + 32 },
  [GGMLType.Q2_K]: { name: 'Q2_K', blockSize: 256, typeSize: 16 + 64 + 2 + 2 },
  [GGMLType.Q3_K]: { name: 'Q3_K', blockSize: 256, typeSize: 32 + 64 + 12 + 2 },
  [GGMLType.Q4_K]: { name: 'Q4_K', blockSize: 256, typeSize: 2 + 2 + 12 + 128 },
  [GGMLType.Q5_K]: { name: 'Q5_K', blockSize: 256, typeSize: 2 + 2 + 12 + 32 + 128 },
  [GGMLType.Q6_K]: { name: 'Q6_K', blockSize: 256, typeSize: 128 + 64 + 16 + 2 },
  [GGMLType.Q8_K]: { name: 'Q8_K', blockSize: 256, typeSize: 4 + 256 + 32 },
  [GGMLType.IQ4_NL]: { name: 'IQ4_NL', blockSize: 32, typeSize: 2 + 16 },
  [GGMLType.IQ4_XS]: { name: 'IQ4_XS', blockSize: 256, typeSize: 2 + 2 + 4 + 128 },
};

/** Traits of a tensor type, or undefined when vserve does not know the type. */
export function typeTraits(type: number): TypeTraits | undefined {
  return TRAITS[type as GGMLType];
}

export function typeName(type: number): string {
  return typeTraits(type)?.name ?? `unknown(${type})`;
}

/** GGUF metadata value types. */
export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/**
 * A metadata value as vserve holds it. Numeric arrays become typed arrays (token scores and types are
 * large), string arrays become string[], nested arrays become arrays of values. 64-bit integers are
 * numbers when they fit exactly in a double, bigints otherwise.
 */
export type GGUFValue =
  | number
  | bigint
  | boolean
  | string
  | string[]
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | GGUFValue[];
