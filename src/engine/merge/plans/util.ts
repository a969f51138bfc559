/** Small GPU helpers shared by the plans and the output passes. */
import type { GpuContext } from '../../gpu/device';
import type { RawDType } from '../../gpu/kernels';
import { decodeToF32, encodeFloats } from '../../tensor/dtype';
import type { DType } from '../../types';
import type { Chunk } from '../stream';
import type { PlanContext } from './plan';

/** Copies `floats` f32 values from the start of `src` to `dst` (at float offset `dstOffset`) on the GPU. */
export function copyFloats(ctx: GpuContext, src: GPUBuffer, dst: GPUBuffer, floats: number, dstOffset = 0): void {
  if (floats === 0) return;
  const encoder = ctx.device.createCommandEncoder({ label: `copy ${src.label} -> ${dst.label}` });
  encoder.copyBufferToBuffer(src, 0, dst, dstOffset * 4, floats * 4);
  ctx.device.queue.submit([encoder.finish()]);
}

/** A copy of the chunk's task-vector stack in a scratch buffer (statistics passes must leave the stack as it is). */
export function stackCopy(p: PlanContext, c: Chunk, slot = 'stack copy'): GPUBuffer {
  const floats = p.tasks * c.count;
  const buf = p.scratch(slot, p.tasks * p.stream.maxChunk);
  copyFloats(p.ctx, c.stack, buf, floats);
  return buf;
}

/** Row r of the stack belongs to segment r (one segment per task). */
export function taskSegments(tasks: number): number[] {
  return Array.from({ length: tasks }, (_, t) => t);
}

/** An all-ones coefficient list: the merged task vector at scale 1. */
export function ones(tasks: number): Float32Array {
  return new Float32Array(tasks).fill(1);
}

/** The encoding the GPU packs an output of `outDtype` in: F16 and BF16 as themselves, everything else as F32. */
export function packDtypeOf(outDtype: DType): RawDType {
  return outDtype === 'F16' || outDtype === 'BF16' ? outDtype : 'F32';
}

/** The bytes written for a chunk packed in packDtypeOf(outDtype): an F64 output is widened on the host from F32. */
export function outputBytes(packed: Uint8Array, outDtype: DType): Uint8Array {
  return outDtype === 'F64' ? encodeFloats(decodeToF32(packed, 'F32'), 'F64') : packed;
}
