/** Core types shared across the engine. Framework-free: no React, DOM or Node imports. */

/** Every dtype the safetensors format defines that we accept. */
export const DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'] as const;
export type DType = (typeof DTYPES)[number];

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Floating-point dtypes: the ones that are merged. Integer and boolean tensors are passed through. */
export const FLOAT_DTYPES: readonly DType[] = ['F64', 'F32', 'F16', 'BF16'];
export const isFloatDType = (d: DType): boolean => FLOAT_DTYPES.includes(d);

/** The dtypes a merged model can be written in. */
export type OutputDType = 'F32' | 'F16' | 'BF16';

/** One tensor's entry in a safetensors header. Offsets are relative to the start of the data area. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte offset of the first byte, relative to the data area. */
  begin: number;
  /** Byte offset one past the last byte, relative to the data area. */
  end: number;
}

/** Number of elements of a shape (1 for a scalar). */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
