/**
 * Launchers for the merge kernels in shaders/ (unpack, task_vector, combine, pack_add, sum_squares, and decode_stack,
 * which reads a whole chunk's raw inputs at once; the fused output kernels are in linearMerge.ts) plus upload and
 * readback. Working
 * tensors are f32 GPU buffers; raw model bytes stay packed as u32 words and are decoded on the GPU. Each launcher
 * checks its buffers' sizes on the host (an out-of-bounds binding would otherwise be clamped silently) and submits
 * one compute pass (or records it into the caller's encoder).
 * src/engine/reference/kernels.ts and linearMerge.ts hold the CPU twins.
 */
import { GpuError } from '../errors';
import { DTYPE_BYTES } from '../types';
import { DTYPE_CODE, LINEAR_MAX_TASKS, reductionBlocks, THREAD_ELEMENTS, WORKGROUP_SIZE } from './constants';
import { align4, type GpuContext } from './device';
import { encodeComputePass, itemGrid, workgroupGrid } from './dispatch';
import { bind, bindQuads, f32Bits, launch } from './launch';
import { withQuadRows } from './mergeKernels';
import { shaderSource } from './shaders';

/** The raw encodings the GPU decodes and encodes. */
export type RawDType = 'F32' | 'F16' | 'BF16';

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
export function checkCount(kernel: string, what: string, count: number): void {
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
    const bindings = [{ buffer: coeffBuf }, bindQuads(ctx, 'combine', stack, rows * numel * F32_BYTES), bindQuads(ctx, 'combine', out, numel * F32_BYTES)];
    const pipeline = specialisedPipeline(ctx, 'combine', { QUADS: numel % 4 === 0 ? 1 : 0 });
    // The third parameter is the zero that keeps products from being fused into the sum (common.wgsl `unfused`).
    launch(ctx, 'combine', [numel, rows, 0], bindings, itemGrid(Math.ceil(numel / THREAD_ELEMENTS), ctx.info.limits.maxComputeWorkgroupsPerDimension), { pipeline });
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
    bindQuads(ctx, 'packAdd', base, numel * F32_BYTES),
    bindQuads(ctx, 'packAdd', delta, numel * F32_BYTES),
    bindQuads(ctx, 'packAdd', out, numel * DTYPE_BYTES[dtype]),
  ];
  // THREAD_ELEMENTS (even) elements per thread: two 16-bit values share a word, so no word has two writers.
  const pipeline = specialisedPipeline(ctx, 'pack_add', { OUT_DTYPE: DTYPE_CODE[dtype] });
  launch(ctx, 'pack_add', [numel], bindings, itemGrid(Math.ceil(numel / THREAD_ELEMENTS), ctx.info.limits.maxComputeWorkgroupsPerDimension), { pipeline });
}

/**
 * Sum of squares of each row of a [rows, numel] f32 buffer: per-thread partial sums over blocks of REDUCTION_BLOCK
 * elements in f32 on the GPU, read back and added in float64 on the host.
 */
export async function sumSquares(ctx: GpuContext, buf: GPUBuffer, rows: number, numel: number): Promise<Float64Array> {
  const sums = new SquareSums(ctx, numel, [rows]);
  try {
    sums.add(buf);
  } catch (e) {
    sums.destroy();
    throw e;
  }
  return (await sums.read())[0]!;
}

/** Partial sums one squaredNorms readback holds at most (4 bytes each): 16 MiB, a 4G-element model's worth. */
const NORMS_PARTIALS_PER_READBACK = 4 * 2 ** 20;

/**
 * The squared norms of several f32 buffers of `numel` elements each, one readback for all of them, or for each run of
 * them whose partial sums fill `maxPartials` (sumSquares per buffer waits for one readback each: a
 * continual step's norms over the 71 tensors of the demo model took about 100 ms that way on SwiftShader).
 */
export async function squaredNorms(ctx: GpuContext, items: readonly { buf: GPUBuffer; numel: number }[], maxPartials = NORMS_PARTIALS_PER_READBACK): Promise<number[]> {
  const out: number[] = [];
  for (let start = 0; start < items.length; ) {
    let end = start;
    let partials = 0;
    while (end < items.length && (end === start || partials + reductionBlocks(items[end]!.numel) <= maxPartials)) partials += reductionBlocks(items[end++]!.numel);
    const run = items.slice(start, end);
    const sums = new SquareSums(ctx, run.map((x) => x.numel), run.map(() => 1));
    try {
      for (const x of run) sums.add(x.buf);
    } catch (e) {
      sums.destroy();
      throw e;
    }
    for (const r of await sums.read()) out.push(r[0]!);
    start = end;
  }
  return out;
}

/**
 * The sums of squares of several [rows_i, numel_i] f32 buffers, read back together. add() launches sum_squares on the
 * next buffer at once, so it sees the buffer as it is when add() is called, into that buffer's segment of one partials
 * buffer (segments start on the storage offset alignment); read() waits for one readback for all of them and frees the
 * partials. The stack path's norms of a chunk (base, task vectors, output) cost one readback this way, not three.
 */
export class SquareSums {
  private readonly partials: GPUBuffer | null;
  private readonly offsets: number[] = [];
  /** Per buffer: elements per row, and REDUCTION_BLOCK blocks per row. */
  private readonly numels: number[];
  private readonly blocks: number[];
  private added = 0;

  /** `numel`: the elements per row of every buffer, or of each buffer in turn. */
  constructor(
    private readonly ctx: GpuContext,
    numel: number | readonly number[],
    private readonly rows: readonly number[],
  ) {
    this.numels = typeof numel === 'number' ? rows.map(() => numel) : [...numel];
    if (this.numels.length !== rows.length) throw new GpuError('validation', `sumSquares: ${this.numels.length} element counts for ${rows.length} buffers`);
    this.numels.forEach((n) => checkCount('sumSquares', 'numel', n));
    rows.forEach((r) => checkCount('sumSquares', 'rows', r));
    this.blocks = this.numels.map(reductionBlocks);
    const align = ctx.device.limits.minStorageBufferOffsetAlignment;
    let bytes = 0;
    rows.forEach((r, i) => {
      this.offsets.push(bytes);
      bytes += Math.ceil((r * this.blocks[i]! * F32_BYTES) / align) * align;
    });
    this.partials = bytes > 0 ? ctx.createBuffer('sumSquares partials', bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC) : null;
  }

  /** Launches the sums of the next buffer of the constructor's list (`rows[i]` rows of `numel[i]` elements). */
  add(buf: GPUBuffer): void {
    const i = this.added;
    if (i >= this.rows.length) throw new GpuError('validation', `sumSquares: ${this.rows.length} buffer(s) planned, one more added`);
    this.added++;
    const rows = this.rows[i]!;
    const numel = this.numels[i]!;
    const blocks = this.blocks[i]!;
    const count = rows * blocks;
    if (count === 0) return;
    const { ctx } = this;
    const grid = workgroupGrid(Math.ceil(count / WORKGROUP_SIZE), ctx.info.limits.maxComputeWorkgroupsPerDimension);
    const out = { buffer: this.partials!, offset: this.offsets[i]!, size: count * F32_BYTES };
    withQuadRows(ctx, 'sumSquares', buf, rows, numel, (rowsBuf, quads) =>
      launch(ctx, 'sum_squares', [numel, rows, blocks, quads], [bind(ctx, 'sumSquares', rowsBuf, rows * quads * 16), out], grid),
    );
  }

  /** The float64 row sums of every added buffer, in order (all rows of a buffer never added are 0); frees the partials. */
  async read(): Promise<Float64Array[]> {
    const totals = this.rows.map((r) => new Float64Array(r));
    if (!this.partials) return totals;
    try {
      const bytes = await readBuffer(this.ctx, this.partials, this.partials.size);
      const partials = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / F32_BYTES);
      for (let i = 0; i < this.added; i++) {
        const first = this.offsets[i]! / F32_BYTES;
        const blocks = this.blocks[i]!;
        for (let r = 0; r < this.rows[i]!; r++) {
          let sum = 0;
          for (let c = 0; c < blocks; c++) sum += partials[first + r * blocks + c]!;
          totals[i]![r] = sum;
        }
      }
    } finally {
      this.destroy();
    }
    return totals;
  }

  /** Frees the partials without reading them (after an error). */
  destroy(): void {
    if (this.partials) this.ctx.destroyBuffer(this.partials);
  }
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

/** Where one input's raw bytes start in a shared buffer of inputs (a multiple of 16 bytes), and their encoding. */
export interface RawSegment {
  offset: number;
  dtype: RawDType;
}

const specialised = new WeakMap<GpuContext, Map<string, GPUComputePipeline>>();

/** Kernel `kernel` with its pipeline constants set (built once per device and set of constants). */
export function specialisedPipeline(ctx: GpuContext, kernel: string, constants: Record<string, number>): GPUComputePipeline {
  let map = specialised.get(ctx);
  if (!map) specialised.set(ctx, (map = new Map()));
  const key = `${kernel} ${JSON.stringify(constants)}`;
  let pipeline = map.get(key);
  if (!pipeline) {
    const module = ctx.device.createShaderModule({ label: kernel, code: shaderSource(kernel) });
    pipeline = ctx.device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main', constants } });
    map.set(key, pipeline);
  }
  return pipeline;
}

/**
 * Checks raw segments (theta0, then one per model): 16-byte aligned, the models in one dtype and evenly spaced.
 * Returns the models' first vec4 and stride in vec4s.
 */
export function modelLayout(kernel: string, segments: readonly RawSegment[]): { first: RawSegment; firstVec4: number; strideVec4: number } {
  if (segments.length < 2) throw new GpuError('validation', `${kernel}: needs theta0 and at least one model segment, got ${segments.length} segments`);
  const first = segments[1]!;
  const stride = segments.length > 2 ? segments[2]!.offset - first.offset : 0;
  segments.forEach((s, i) => {
    if (!Number.isInteger(s.offset) || s.offset < 0 || s.offset % 16 !== 0) {
      throw new GpuError('validation', `${kernel}: segment ${i} offset ${s.offset} is not a multiple of 16 bytes`);
    }
    if (i > 0 && (s.dtype !== first.dtype || s.offset !== first.offset + (i - 1) * stride)) {
      throw new GpuError('validation', `${kernel}: model segments must share one dtype and be evenly spaced (segment ${i}: ${s.dtype} at ${s.offset})`);
    }
  });
  return { first, firstVec4: first.offset / 16, strideVec4: stride / 16 };
}

/** Whether models in these dtypes can share one launch of linear_merge or decode_stack. */
export function sharesModelDtype(segments: readonly RawSegment[]): boolean {
  return segments.slice(2).every((s) => s.dtype === segments[1]?.dtype);
}

/**
 * decode_stack: theta0 (f32 [numel]) and the task-vector stack (f32 [T, numel]) of one chunk from raw segments
 * (RawUploader's layout, padded to groups of 4): the values of unpack + one task_vector per model, in one launch
 * when the models share a dtype, else one launch per model.
 */
export function decodeStack(ctx: GpuContext, a: { inputs: GPUBuffer; segments: readonly RawSegment[]; numel: number; base: GPUBuffer; stack: GPUBuffer }): void {
  if (!sharesModelDtype(a.segments)) {
    for (let m = 1; m < a.segments.length; m++) decodeRows(ctx, a, [a.segments[0]!, a.segments[m]!], m - 1, a.segments.length - 1);
    return;
  }
  decodeRows(ctx, a, a.segments, 0, a.segments.length - 1);
}

/** One decode_stack launch: theta0 and rows firstRow.. of a stack of `rows` rows from `segments` (theta0, models). */
function decodeRows(
  ctx: GpuContext,
  a: { inputs: GPUBuffer; numel: number; base: GPUBuffer; stack: GPUBuffer },
  segments: readonly RawSegment[],
  firstRow: number,
  rows: number,
): void {
  const kernel = 'decodeStack';
  checkCount(kernel, 'numel', a.numel);
  const { first, firstVec4, strideVec4 } = modelLayout(kernel, segments);
  const tasks = segments.length - 1;
  if (a.numel === 0) return;
  const groups = Math.ceil(a.numel / 4);
  // Whole vec4s: a 16-bit segment's last group may be the low half of its last vec4.
  const segBytes = (d: RawDType) => Math.ceil((groups * 4 * DTYPE_BYTES[d]) / 16) * 16;
  const inputBytes = Math.max(segments[0]!.offset + segBytes(segments[0]!.dtype), first.offset + (tasks - 1) * strideVec4 * 16 + segBytes(first.dtype));
  const bindings = [bind(ctx, kernel, a.inputs, inputBytes), bindQuads(ctx, kernel, a.base, a.numel * F32_BYTES), bindQuads(ctx, kernel, a.stack, rows * a.numel * F32_BYTES)];
  const pipeline = specialisedPipeline(ctx, 'decode_stack', { BASE_DTYPE: DTYPE_CODE[segments[0]!.dtype], MODEL_DTYPE: DTYPE_CODE[first.dtype], QUADS: a.numel % 4 === 0 ? 1 : 0 });
  launch(ctx, kernel, [a.numel, tasks, firstVec4, strideVec4, firstRow], bindings, itemGrid(groups, ctx.info.limits.maxComputeWorkgroupsPerDimension), { pipeline });
}

/**
 * Readbacks through reused staging buffers: `start` records copies of buffer ranges into a free staging buffer and
 * maps it once the submitted work is done; the caller may submit more work before awaiting the bytes, so reading
 * one chunk back overlaps the next chunk's kernels.
 */
export class StagingReader {
  private readonly free: GPUBuffer[] = [];
  private readonly all = new Set<GPUBuffer>();

  constructor(
    private readonly ctx: GpuContext,
    private readonly label: string,
  ) {}

  /**
   * Records copies of `parts` (each from offset 0 of its buffer, placed one after the other at 8-byte aligned
   * offsets) into `encoder`, submits it, and returns a function that resolves to each part's bytes (copies).
   */
  start(encoder: GPUCommandEncoder, parts: readonly { buffer: GPUBuffer; bytes: number }[]): () => Promise<Uint8Array[]> {
    const { ctx } = this;
    const offsets: number[] = [];
    let size = 0;
    for (const p of parts) {
      if (align4(p.bytes) > p.buffer.size) throw new GpuError('validation', `readback: ${p.bytes} bytes requested from '${p.buffer.label}' of ${p.buffer.size} bytes`);
      offsets.push(size);
      size += Math.ceil(p.bytes / 8) * 8;
    }
    size = Math.max(size, 8);
    const at = this.free.findIndex((b) => b.size >= size);
    const staging = at >= 0 ? this.free.splice(at, 1)[0]! : ctx.createBuffer(`${this.label} staging`, size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    this.all.add(staging);
    parts.forEach((p, i) => {
      if (p.bytes > 0) encoder.copyBufferToBuffer(p.buffer, 0, staging, offsets[i]!, align4(p.bytes));
    });
    ctx.device.queue.submit([encoder.finish({ label: this.label })]);
    const mapped = staging.mapAsync(GPUMapMode.READ);
    // Keep a failure from being unhandled if the caller gives up before awaiting it.
    mapped.catch(() => undefined);
    // Named, so that CPU profiles (bench/hostProfile.ts) can tell its copy out of the mapped range.
    const readStaged = async () => {
      try {
        await mapped;
      } catch (err) {
        ctx.assertAlive();
        throw new GpuError('validation', `readback '${this.label}': ${(err as Error).message}`);
      }
      const out = parts.map((p, i) => (p.bytes === 0 ? new Uint8Array(0) : new Uint8Array(staging.getMappedRange(offsets[i]!, Math.ceil(p.bytes / 8) * 8)).slice(0, p.bytes)));
      staging.unmap();
      this.free.push(staging);
      return out;
    };
    return readStaged;
  }

  /** Frees every staging buffer (pending readbacks then fail). */
  destroy(): void {
    for (const b of this.all) this.ctx.destroyBuffer(b);
    this.all.clear();
    this.free.length = 0;
  }
}
