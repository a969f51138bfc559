/**
 * Raw chunk inputs for the kernels that read model bytes directly (linear_merge, decode_stack, ties_scan,
 * ties_output): seeded values, edge values, and packing as RawUploader lays them out.
 */
import type { RawDType, RawSegment } from '../../src/engine/gpu/kernels';
import { LINEAR_BLOCK } from '../../src/engine/gpu/linearMerge';
import type { RawInput } from '../../src/engine/reference/linearMerge';
import { rngKey, rngU32, rngUniform } from '../../src/engine/rng';
import { encodeFloats } from '../../src/engine/tensor/dtype';
import { DTYPE_BYTES } from '../../src/engine/types';

/** Seeded weights around a base: |x| up to ~2^4, some exactly equal to the base (tau = 0). */
export function randomValues(seed: number, n: number, around?: Float32Array): Float32Array {
  const key = rngKey(seed, 1, 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rngU32(key, 2 * i + 1);
    const v = (rngUniform(key, 2 * i) - 0.5) * 2 ** ((r % 9) - 4);
    out[i] = around ? (r % 13 === 0 ? around[i]! : around[i]! + v * 0.1) : v;
  }
  return out;
}

export const EDGES = [0, -0, 1, -1.5, 2 ** -126, 1e-40, -1e-40, 2 ** -24, 65504, 65520, -70000, 1e30, -3.4e38, Infinity, -Infinity, NaN];

export function input(values: Float32Array, dtype: RawDType): RawInput {
  return { bytes: encodeFloats(values, dtype), dtype };
}

/** Packs inputs as RawUploader does: 16-byte aligned segments, zero-padded to whole blocks; models evenly spaced. */
export function pack(inputs: readonly RawInput[], numel: number, block = LINEAR_BLOCK): { bytes: Uint8Array<ArrayBuffer>; segments: RawSegment[] } {
  const padded = Math.ceil(numel / block) * block;
  const segments: RawSegment[] = [];
  let size = 0;
  for (const r of inputs) {
    segments.push({ offset: size, dtype: r.dtype });
    size += Math.ceil((padded * DTYPE_BYTES[r.dtype]) / 16) * 16;
  }
  const bytes = new Uint8Array(size);
  inputs.forEach((r, i) => bytes.set(r.bytes, segments[i]!.offset));
  return { bytes, segments };
}

/** The output words of encoded bytes (u32 for F32, u16 for F16 / BF16). */
export const words = (bytes: Uint8Array, dtype: RawDType) =>
  dtype === 'F32' ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
