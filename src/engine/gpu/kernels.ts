/**
 * Launchers for the merge kernels in shaders/ (unpack, task_vector, combine, pack_add, sum_squares) plus upload
 * and readback. Working tensors are f32 GPU buffers; raw model bytes stay packed as u32 words and are decoded on
 * the GPU. Each launcher checks its buffers' sizes on the host (an out-of-bounds binding would otherwise be
 * clamped silently), submits one compute pass and frees the small parameter buffers it made.
 * src/engine/reference/kernels.ts holds the CPU twin of each kernel.
 */
import { GpuError } from '../errors';
import { DTYPE_BYTES } from '../types';
import { DTYPE_CODE, WORKGROUP_SIZE } from './constants';
import { align4, type GpuContext } from './device';
import { itemGrid, workgroupGrid, type Grid } from './dispatch';
import { bind, f32Bits, launch } from './launch';

/** The raw encodings the GPU decodes and encodes. */
export type RawDType = 'F32' | 'F16' | 'BF16';

/** Elements each sum_squares workgroup reduces: 16 per thread keeps the partials (the readback) small. */
const SUM_SQUARES_CHUNK = WORKGROUP_SIZE * 16;

const F32_BYTES = 4;

/** Uploads raw bytes (padded with zeros to a multiple of 4) into a new storage buffer of u32 words. */
export function uploadRaw(ctx: GpuContext, label: string, bytes: Uint8Array): GPUBuffer {
  const size = align4(bytes.byteLength);
  const buffer = ctx.createBuffer(label, size, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
  if (size === 0) return buffer;
  let data: Uint8Array<ArrayBuffer>;
  if (size === bytes.byteLength && bytes.buffer instanceof ArrayBuffer) {
    data = bytes as Uint8Array<ArrayBuffer>;
  } else {
    // Pad to whole words (writeBuffer copies 4-byte multiples); this also copies views of shared memory.
    data = new Uint8Array(size);
    data.set(bytes);
  }
  ctx.device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/** Copies the first `byteLength` bytes of `buf` (which needs COPY_SRC usage) back to the host. */
export async function readBuffer(ctx: GpuContext, buf: GPUBuffer, byteLength: number): Promise<Uint8Array> {
  const size = align4(byteLength);
  if (size > buf.size) {
    throw new GpuError('validation', `readBuffer: ${byteLength} bytes requested from '${buf.label}' of ${buf.size} bytes`);
  }
  const out = new Uint8Array(byteLength);
  if (byteLength === 0) return out;
  const staging = ctx.createBuffer(`${buf.label} readback`, size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  try {
    const encoder = ctx.device.createCommandEncoder({ label: `${buf.label} readback` });
    encoder.copyBufferToBuffer(buf, 0, staging, 0, size);
    ctx.device.queue.submit([encoder.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (err) {
      ctx.assertAlive();
      throw new GpuError('validation', `readBuffer '${buf.label}': ${(err as Error).message}`);
    }
    out.set(new Uint8Array(staging.getMappedRange(0, size), 0, byteLength));
    staging.unmap();
  } finally {
    ctx.destroyBuffer(staging);
  }
  return out;
}

/** Throws unless `count` is a non-negative integer. */
function checkCount(kernel: string, what: string, count: number): void {
  if (!Number.isInteger(count) || count < 0) {
    throw new GpuError('validation', `${kernel}: ${what} must be a non-negative integer, got ${count}`);
  }
}

/** Decodes `numel` raw elements into f32: out[j] = decode(raw, j). */
export function unpack(ctx: GpuContext, raw: GPUBuffer, dtype: RawDType, numel: number, out: GPUBuffer): void {
  checkCount('unpack', 'numel', numel);
  if (numel === 0) return;
  const bindings = [bind(ctx, 'unpack', raw, numel * DTYPE_BYTES[dtype]), bind(ctx, 'unpack', out, numel * F32_BYTES)];
  launch(ctx, 'unpack', [numel, DTYPE_CODE[dtype]], bindings, itemGrid(numel, ctx.info.limits.maxComputeWorkgroupsPerDimension));
}

/** Writes one row of the task-vector stack: out[row * numel + j] = decode(rawFt, j) - base[j]. */
export function taskVector(
  ctx: GpuContext,
  rawFt: GPUBuffer,
  dtype: RawDType,
  base: GPUBuffer,
  numel: number,
  out: GPUBuffer,
  row: number,
): void {
  checkCount('taskVector', 'numel', numel);
  checkCount('taskVector', 'row', row);
  if (numel === 0) return;
  const bindings = [
    bind(ctx, 'taskVector', rawFt, numel * DTYPE_BYTES[dtype]),
    bind(ctx, 'taskVector', base, numel * F32_BYTES),
    bind(ctx, 'taskVector', out, (row + 1) * numel * F32_BYTES),
  ];
  const grid = itemGrid(numel, ctx.info.limits.maxComputeWorkgroupsPerDimension);
  launch(ctx, 'task_vector', [numel, DTYPE_CODE[dtype], row], bindings, grid);
}

/** Weighted sum of the stack's rows, in f32 and in row order: out[j] = sum_r coeffs[r] * stack[r * numel + j]. */
export function combine(
  ctx: GpuContext,
  stack: GPUBuffer,
  rows: number,
  numel: number,
  coeffs: Float32Array,
  out: GPUBuffer,
): void {
  checkCount('combine', 'numel', numel);
  if (!Number.isInteger(rows) || rows < 1 || coeffs.length !== rows) {
    throw new GpuError('validation', `combine: needs rows >= 1 and one coefficient per row, got ${rows} rows, ${coeffs.length} coefficients`);
  }
  if (numel === 0) return;
  const coeffBuf = ctx.createBuffer('combine coeffs', rows * F32_BYTES, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  try {
    ctx.device.queue.writeBuffer(coeffBuf, 0, Float32Array.from(coeffs));
    const bindings = [{ buffer: coeffBuf }, bind(ctx, 'combine', stack, rows * numel * F32_BYTES), bind(ctx, 'combine', out, numel * F32_BYTES)];
    // The third parameter is the zero that keeps products from being fused into the sum (common.wgsl `unfused`).
    launch(ctx, 'combine', [numel, rows, 0], bindings, itemGrid(numel, ctx.info.limits.maxComputeWorkgroupsPerDimension));
  } finally {
    ctx.destroyBuffer(coeffBuf);
  }
}

/**
 * Encodes base + delta for output: out holds little-endian words of F32, F16 or BF16 values, rounded to nearest
 * even (overflow gives infinity, every NaN becomes the positive quiet NaN).
 */
export function packAdd(ctx: GpuContext, base: GPUBuffer, delta: GPUBuffer, numel: number, dtype: RawDType, out: GPUBuffer): void {
  checkCount('packAdd', 'numel', numel);
  if (numel === 0) return;
  const bindings = [
    bind(ctx, 'packAdd', base, numel * F32_BYTES),
    bind(ctx, 'packAdd', delta, numel * F32_BYTES),
    bind(ctx, 'packAdd', out, numel * DTYPE_BYTES[dtype]),
  ];
  // One thread per output word: two 16-bit values share a word.
  const words = dtype === 'F32' ? numel : Math.ceil(numel / 2);
  launch(ctx, 'pack_add', [numel, DTYPE_CODE[dtype]], bindings, itemGrid(words, ctx.info.limits.maxComputeWorkgroupsPerDimension));
}

/**
 * Sum of squares of each row of a [rows, numel] f32 buffer: per-workgroup partial sums in f32 on the GPU, read
 * back and added in float64 on the host.
 */
export async function sumSquares(ctx: GpuContext, buf: GPUBuffer, rows: number, numel: number): Promise<Float64Array> {
  checkCount('sumSquares', 'rows', rows);
  checkCount('sumSquares', 'numel', numel);
  const totals = new Float64Array(rows);
  if (rows === 0 || numel === 0) return totals;
  const chunks = Math.ceil(numel / SUM_SQUARES_CHUNK);
  const partialBuf = ctx.createBuffer('sumSquares partials', rows * chunks * F32_BYTES, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  try {
    const bindings = [bind(ctx, 'sumSquares', buf, rows * numel * F32_BYTES), { buffer: partialBuf }];
    const grid = workgroupGrid(rows * chunks, ctx.info.limits.maxComputeWorkgroupsPerDimension);
    launch(ctx, 'sum_squares', [numel, rows, chunks, SUM_SQUARES_CHUNK], bindings, grid);
    const bytes = await readBuffer(ctx, partialBuf, rows * chunks * F32_BYTES);
    const partials = new Float32Array(bytes.buffer, bytes.byteOffset, rows * chunks);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0; c < chunks; c++) sum += partials[r * chunks + c]!;
      totals[r] = sum;
    }
  } finally {
    ctx.destroyBuffer(partialBuf);
  }
  return totals;
}

/** In place: dst[j] = alpha * dst[j] + beta * src[j] (f32, products rounded separately). `src` may be `dst` only when beta is 0. */
export function scaleAdd(ctx: GpuContext, dst: GPUBuffer, alpha: number, beta: number, src: GPUBuffer, numel: number): void {
  if (!Number.isInteger(numel) || numel < 0) throw new GpuError('validation', `scale_add: numel must be a non-negative integer, got ${numel}`);
  if (src === dst && beta !== 0) throw new GpuError('validation', `scale_add: src and dst are the same buffer '${dst.label}'`);
  if (numel === 0) return;
  // WebGPU forbids binding one buffer as both read and read_write: a zero-beta update reads a stand-in.
  const stand = src === dst ? ctx.createBuffer('scale_add stand-in', 16, GPUBufferUsage.STORAGE) : null;
  try {
    const bindings = [stand ? { buffer: stand } : bind(ctx, 'scale_add', src, numel * 4), bind(ctx, 'scale_add', dst, numel * 4)];
    launch(ctx, 'scale_add', [numel, f32Bits(alpha), f32Bits(beta), 0], bindings, itemGrid(numel, ctx.info.limits.maxComputeWorkgroupsPerDimension));
  } finally {
    if (stand) ctx.destroyBuffer(stand);
  }
}
