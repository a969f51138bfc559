/**
 * Generator of every test fixture: deterministic random tensors and tiny safetensors models, including a
 * base plus fine-tuned variants (base + small random deltas) for merge tests.
 */
import { encodeFloats, decodeFloats } from '../../src/engine/tensor/dtype';
import { serializeSafetensors } from '../../src/engine/io/safetensorsWriter';
import { DTYPE_BYTES, isFloatDType, numelOf, type DType } from '../../src/engine/types';

/** mulberry32: a small, fast, deterministic PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Approximately standard normal: sum of 4 uniforms, centred and scaled to unit variance. */
function normalish(rng: () => number): number {
  return (rng() + rng() + rng() + rng() - 2) * Math.sqrt(3);
}

/** Random tensor bytes: normal-ish floats for float dtypes, small integers (0..99) or 0/1 otherwise. */
export function randomTensor(rng: () => number, shape: number[], dtype: DType): Uint8Array {
  const n = numelOf(shape);
  if (isFloatDType(dtype)) {
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = normalish(rng);
    return encodeFloats(values, dtype as 'F64' | 'F32' | 'F16' | 'BF16');
  }
  const size = DTYPE_BYTES[dtype];
  const bytes = new Uint8Array(n * size);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) {
    const v = dtype === 'BOOL' ? (rng() < 0.5 ? 1 : 0) : Math.floor(rng() * 100);
    if (size === 8) view.setBigInt64(i * 8, BigInt(v), true);
    else if (size === 4) view.setInt32(i * 4, v, true);
    else if (size === 2) view.setInt16(i * 2, v, true);
    else view.setUint8(i, v);
  }
  return bytes;
}

/** One tensor of a fixture model. */
export interface FixtureTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** A whole safetensors file holding `tensors` (in the given order). */
export function makeModelBytes(tensors: FixtureTensor[], metadata?: Record<string, string>): Uint8Array {
  return serializeSafetensors(tensors, metadata);
}

/**
 * A base model and `models` fine-tuned variants: each fine-tuned float tensor is base + scale * noise
 * (scale defaults to 0.1), rounded to `dtype`; non-float tensors are copied unchanged.
 */
export function makeRelatedModels(opts: {
  seed: number;
  dtype: DType;
  models: number;
  shapes: Record<string, number[]>;
  scale?: number;
}): { base: FixtureTensor[]; finetuned: FixtureTensor[][] } {
  const rng = seededRandom(opts.seed);
  const scale = opts.scale ?? 0.1;
  const { dtype } = opts;
  const base = Object.entries(opts.shapes).map(([name, shape]) => ({ name, dtype, shape, data: randomTensor(rng, shape, dtype) }));
  const finetuned = Array.from({ length: opts.models }, () =>
    base.map((t) => {
      if (!isFloatDType(dtype)) return { ...t, data: t.data.slice() };
      const values = decodeFloats(t.data, dtype);
      for (let i = 0; i < values.length; i++) values[i] = values[i]! + scale * normalish(rng);
      return { ...t, data: encodeFloats(values, dtype as 'F64' | 'F32' | 'F16' | 'BF16') };
    }),
  );
  return { base, finetuned };
}
