/**
 * Launching one kernel: bind a fresh uniform parameter buffer and the kernel's storage buffers, dispatch, free the
 * parameters. Every kernel launcher in src/engine/gpu uses these helpers.
 */
import { GpuError } from '../errors';
import { align16, align4, type GpuContext } from './device';
import { runComputePass } from './dispatch';

/** A binding of the first `bytes` bytes of `buf`, after checking that the buffer and the device allow it. */
export function bind(ctx: GpuContext, kernel: string, buf: GPUBuffer, bytes: number): GPUBufferBinding {
  const size = align4(bytes);
  if (size > buf.size) {
    throw new GpuError('validation', `${kernel}: buffer '${buf.label}' has ${buf.size} bytes, needs ${size}`);
  }
  const limit = ctx.info.limits.maxStorageBufferBindingSize;
  if (size > limit) {
    throw new GpuError('validation', `${kernel}: '${buf.label}' needs ${size} bytes, over maxStorageBufferBindingSize ${limit}`);
  }
  return { buffer: buf, size: Math.max(size, 4) };
}

/**
 * A binding of `bytes` rounded up to whole quads, for a kernel that reads or writes the data as vec4s (every buffer
 * of GpuContext.createBuffer has room: its size is rounded up to 16 bytes). The kernel must leave the padding alone
 * when it writes.
 */
export function bindQuads(ctx: GpuContext, kernel: string, buf: GPUBuffer, bytes: number): GPUBufferBinding {
  return bind(ctx, kernel, buf, align16(bytes));
}

/** The u32 bit pattern of an f32 value (for float fields of a uniform Params struct). */
export function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0]!;
}

/**
 * Runs one pass of `kernel` with a fresh uniform parameter buffer (u32 words, bound at binding 0) followed by
 * `bindings` (1..), submits it, then frees the parameter buffer. `opts.pipeline` replaces the kernel's default
 * pipeline (one with pipeline constants set). A pass recorded into a caller's encoder needs parameters that outlive
 * the call: see encodePartialsSum.
 */
export function launch(
  ctx: GpuContext,
  kernel: string,
  params: readonly number[],
  bindings: readonly GPUBufferBinding[],
  grid: { x: number; y: number },
  opts: { pipeline?: GPUComputePipeline } = {},
): void {
  const words = new Uint32Array(Math.max(4, Math.ceil(params.length / 4) * 4));
  words.set(params.map((p) => p >>> 0));
  const paramBuf = ctx.createBuffer(`${kernel} params`, words.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  try {
    ctx.device.queue.writeBuffer(paramBuf, 0, words);
    const all = [{ buffer: paramBuf }, ...bindings];
    runComputePass(ctx, kernel, opts.pipeline ?? kernel, all, grid);
  } finally {
    // Destroying after submit is safe: submitted work still sees the buffer.
    ctx.destroyBuffer(paramBuf);
  }
}
