/**
 * Streams the tensors to merge through the GPU, chunk by chunk: for each chunk the base (theta0, f32) and the stack of
 * task vectors ([T, count] f32, row t = model t) are built on the GPU from the models' bytes. Methods make several
 * passes (statistics first, output last); when every chunk's buffers fit in `cacheBytes` they stay on the GPU
 * between passes, otherwise each pass reads the files again, so GPU memory stays at a few chunks per model whatever
 * the model size.
 */
import { throwIfAborted } from '../errors';
import type { GpuContext } from '../gpu/device';
import { decodeStack, type RawDType, type RawSegment } from '../gpu/kernels';
import { readTensorInto, type Model } from '../io/model';
import { decodeToF32, encodeFloats, LITTLE_ENDIAN } from '../tensor/dtype';
import { DTYPE_BYTES, type DType } from '../types';
import type { AlignedTensor } from './align';
import { UploadRing } from '../gpu/uploadRing';
import { inputsKey, type ResidentInputs } from './residentInputs';

/** How a method needs tensors cut: any element ranges, or whole rows (last dimension). */
export type Granularity = 'element' | 'row';

/** One chunk of one tensor on the GPU. */
export interface Chunk {
  tensor: AlignedTensor;
  /** First element of the chunk within the tensor, and the number of elements. */
  start: number;
  count: number;
  /** Length of the tensor's rows (its last dimension; the whole tensor for 1-D, 1 for scalars). */
  rowLength: number;
  /** theta0 of the chunk, f32 [count]. */
  base: GPUBuffer;
  /** Task vectors, f32 [T, count]. A pass may change it only when it is the stream's final pass. */
  stack: GPUBuffer;
}

export interface StreamSource {
  base: Model;
  models: Model[];
  signal?: AbortSignal;
  /** Raw chunks kept on the GPU from earlier merges of these inputs: taken instead of uploaded, and added to. */
  resident?: ResidentInputs;
}

export interface StreamOptions {
  granularity: Granularity;
  chunkElements: number;
  /** Keep chunks on the GPU between passes when all of them fit in this many bytes (0: never). */
  cacheBytes: number;
  /** Called with bytes read from the models. */
  onRead?: (bytes: number) => void;
}

/**
 * runMerge's default `cacheBytes`, by kind of adapter. On a GPU every byte kept saves the bus a second upload: global
 * TIES over 8 full-size f32 ViT-B/32 models (3.15 GB of inputs) on an H200 took 1.27-1.44 s with every chunk kept,
 * 1.47-1.81 s with 2 GiB and 1.61-1.91 s with 512 MiB (bench/README.md, 2026-11-30). 2 GiB, not more: a browser tab on
 * a small or integrated GPU may have no more to spare (the command line's --gpu-cache sets more). A CPU-emulated
 * adapter's buffers are host memory and its passes are bound by the kernels, not by uploads: it keeps 512 MiB. A merge
 * that runs out of GPU memory is run again without the cache (gpu/retry.ts).
 */
export function defaultCacheBytes(ctx: GpuContext): number {
  return ctx.info.isSoftware ? 512 * 2 ** 20 : 2 * 2 ** 30;
}

// A function, not a constant: in Node, GPUBufferUsage exists only once the platform has installed Dawn's globals.
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Length of a tensor's rows for row-granular methods. */
export function rowLengthOf(t: AlignedTensor): number {
  return t.shape.length === 0 ? 1 : Math.max(1, t.shape[t.shape.length - 1]!);
}

/** Element ranges of a tensor: chunks of at most `chunkElements`, whole rows for row granularity. */
export function chunkRanges(t: AlignedTensor, granularity: Granularity, chunkElements: number): { start: number; count: number }[] {
  const step = granularity === 'row' ? Math.max(1, Math.floor(chunkElements / rowLengthOf(t))) * rowLengthOf(t) : chunkElements;
  const out: { start: number; count: number }[] = [];
  for (let start = 0; start < t.numel; start += step) out.push({ start, count: Math.min(step, t.numel - start) });
  return out;
}

/** The dtype the GPU decodes a stored dtype from (gpuRaw). */
export function gpuDtypeOf(dtype: DType): RawDType {
  return dtype === 'F16' || dtype === 'BF16' ? dtype : 'F32';
}

/** Input `i` of a source: 0 theta0, 1 + m model m. */
function inputModel(source: StreamSource, i: number): Model {
  return i === 0 ? source.base : source.models[i - 1]!;
}

/** The dtype input `i` stores tensor `t` in (theta0's is the aligned tensor's). */
function storedDtype(source: StreamSource, t: AlignedTensor, i: number): DType {
  return i === 0 ? t.dtype : inputModel(source, i).tensors.get(t.name)!.info.dtype;
}

/** The dtype the GPU decodes tensor `t` from in each input: theta0's, then each model's (runs sharing a chunk must agree). */
export function inputDtypes(source: StreamSource, t: AlignedTensor): RawDType[] {
  return Array.from({ length: source.models.length + 1 }, (_, i) => gpuDtypeOf(storedDtype(source, t, i)));
}

/** Raw bytes in a dtype the GPU decodes (F64 is rounded to F32 on the CPU: WGSL has no f64). */
export function gpuRaw(bytes: Uint8Array, dtype: DType): { bytes: Uint8Array; dtype: RawDType } {
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') return { bytes, dtype };
  return { bytes: encodeFloats(decodeToF32(bytes, dtype), 'F32'), dtype: 'F32' };
}

/**
 * Input `i` (0 theta0, 1 + m model m) of tensor `t` over elements [start, start + count), read from the source as the
 * GPU decodes it (gpuRaw); `onRead` is told the bytes read.
 */
export async function readRawInput(source: StreamSource, i: number, t: AlignedTensor, start: number, count: number, onRead?: (bytes: number) => void): Promise<{ bytes: Uint8Array; dtype: RawDType }> {
  const dtype = storedDtype(source, t, i);
  const raw = gpuRaw(await inputModel(source, i).readTensor(t.name, { start, count }, source.signal), dtype);
  onRead?.(count * DTYPE_BYTES[dtype]);
  return raw;
}

/**
 * readRawInput's bytes written into `view` from byte `at`; returns how many. An input the GPU decodes as stored
 * (F32, F16, BF16) is read straight into `view` where its model's sources can (readTensorInto: a file's bytes
 * land in the mapped staging buffer with no copy in between).
 */
export async function readRawInputInto(source: StreamSource, i: number, t: AlignedTensor, start: number, count: number, view: Uint8Array, at: number, onRead?: (bytes: number) => void): Promise<number> {
  const dtype = storedDtype(source, t, i);
  if (gpuDtypeOf(dtype) !== dtype) {
    const raw = await readRawInput(source, i, t, start, count, onRead);
    view.set(raw.bytes, at);
    return raw.bytes.byteLength;
  }
  const bytes = count * DTYPE_BYTES[dtype];
  await readTensorInto(inputModel(source, i), t.name, { start, count }, view.subarray(at, at + bytes), source.signal);
  onRead?.(bytes);
  return bytes;
}

/**
 * Each model's task vector over elements [start, start + count) of tensor `t`, formed on the host as decode_stack
 * forms it: decode(model) - decode(theta0), rounded to f32; model m's at [m * count, (m + 1) * count), as the stack.
 * `onRead` is told the bytes read.
 */
export async function hostTaskVectorStack(source: StreamSource, t: AlignedTensor, start: number, count: number, onRead?: (bytes: number) => void): Promise<Float32Array<ArrayBuffer>> {
  const theta = new Float32Array(count);
  await readF32Into(source, 0, t, start, count, theta, onRead);
  const out = new Float32Array(source.models.length * count);
  for (let m = 0; m < source.models.length; m++) {
    const tau = out.subarray(m * count, (m + 1) * count);
    await readF32Into(source, m + 1, t, start, count, tau, onRead);
    for (let j = 0; j < count; j++) tau[j] = tau[j]! - theta[j]!;
  }
  return out;
}

/** Input `i`'s values of tensor `t` over [start, start + count), rounded to f32, into `out` (F32 read straight into it). */
async function readF32Into(source: StreamSource, i: number, t: AlignedTensor, start: number, count: number, out: Float32Array, onRead?: (bytes: number) => void): Promise<void> {
  const dtype = storedDtype(source, t, i);
  const model = inputModel(source, i);
  if (dtype === 'F32' && LITTLE_ENDIAN) await readTensorInto(model, t.name, { start, count }, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), source.signal);
  else out.set(decodeToF32(await model.readTensor(t.name, { start, count }, source.signal), dtype));
  onRead?.(count * DTYPE_BYTES[dtype]);
}

/** hostTaskVectorStack's rows, one per model. */
export async function hostTaskVectors(source: StreamSource, t: AlignedTensor, start: number, count: number): Promise<Float32Array[]> {
  const stack = await hostTaskVectorStack(source, t, start, count);
  return source.models.map((_, m) => stack.subarray(m * count, (m + 1) * count));
}

/** One chunk's raw inputs on the GPU: segment 0 is theta0, segment 1 + m model m, all in one buffer. */
export interface RawChunk {
  buffer: GPUBuffer;
  segments: RawSegment[];
  /** Bytes of `buffer` the chunk uses (the buffer may be larger). */
  bytes: number;
}

const chunkKey = (t: AlignedTensor, start: number, count: number) => `${t.name}@${start}+${count}`;

/**
 * Raw chunks kept on the GPU from one pass over the raw inputs to the next (global TIES's scan, SLERP's and Model
 * Stock's Gram pass, then their fused output), up to a byte limit: the first pass uploads them straight into kept
 * buffers, the next takes each chunk instead of reading and uploading it again.
 */
export class RawChunkCache {
  private readonly chunks = new Map<string, RawChunk>();
  private bytes = 0;

  constructor(
    private readonly ctx: GpuContext,
    private readonly limitBytes: number,
  ) {}

  /**
   * Uploads chunk (t, start) with `uploader`: straight into a buffer this cache keeps for the next pass when the chunk
   * fits under the limit (no copy on the GPU), else into the uploader's own buffer.
   */
  async upload(uploader: RawUploader, t: AlignedTensor, start: number, count: number): Promise<RawChunk> {
    let made: GPUBuffer | null = null;
    try {
      const into = (bytes: number) => {
        if (this.bytes + bytes > this.limitBytes) return null;
        made = this.ctx.createBuffer(`${t.name}[${start}:] raw inputs (kept)`, bytes, storage());
        return made;
      };
      const raw = await uploader.upload(t, start, count, into);
      if (made) {
        this.chunks.set(chunkKey(t, start, count), raw);
        this.bytes += raw.bytes;
      }
      return raw;
    } catch (e) {
      if (made) this.ctx.destroyBuffer(made);
      throw e;
    }
  }

  /**
   * Takes chunk (t, start) of `count` elements out of the cache (the caller frees it with `release`), or null: a pass
   * that split the tensor otherwise finds nothing.
   */
  take(t: AlignedTensor, start: number, count: number): RawChunk | null {
    const key = chunkKey(t, start, count);
    const raw = this.chunks.get(key) ?? null;
    this.chunks.delete(key);
    return raw;
  }

  /** Frees a taken chunk (work already submitted that reads it still completes). */
  release(raw: RawChunk): void {
    this.bytes -= raw.bytes;
    this.ctx.destroyBuffer(raw.buffer);
  }

  destroy(): void {
    for (const raw of this.chunks.values()) this.ctx.destroyBuffer(raw.buffer);
    this.chunks.clear();
    this.bytes = 0;
  }
}

/**
 * Reads the base's and every model's bytes of a chunk and uploads them into one reused GPU buffer, each input on a
 * 16-byte boundary so kernels read it as vec4 words, zero-padded to a whole number of `blockElements` elements. The
 * bytes go straight into a mapped staging buffer (UploadRing) and one copy per chunk moves them; copies are ordered
 * with submitted work, so the next chunk may be uploaded while kernels that read this one are still queued. With the
 * source's `resident` store, a chunk an earlier merge of the same inputs kept is returned instead (no read, no upload),
 * and new chunks go into buffers the store keeps while it has room.
 */
export class RawUploader {
  private buffer: GPUBuffer | null = null;
  private readonly ring: UploadRing;

  constructor(
    private readonly ctx: GpuContext,
    private readonly source: StreamSource,
    private readonly onRead?: (bytes: number) => void,
    private readonly blockElements = 4,
    /** Staging buffers: one more than the chunks the caller keeps in flight. */
    stagingDepth = 2,
  ) {
    this.ring = new UploadRing(ctx, 'raw inputs upload', stagingDepth);
  }

  /**
   * Reads and uploads elements [start, start + count) of tensor `t` of the base and every model, into the buffer
   * `into` returns for the chunk's size when it returns one (the caller owns it), else into this uploader's own.
   */
  async upload(t: AlignedTensor, start: number, count: number, into?: ((bytes: number) => GPUBuffer | null) | null): Promise<RawChunk> {
    const chunk = await this.uploadParts([{ t, start, count }], into);
    return { buffer: chunk.buffer, segments: chunk.segments, bytes: chunk.bytes };
  }

  /**
   * Uploads several ranges as one chunk: in each input's segment, part after part, each padded to whole
   * `blockElements` blocks (`at`: where each part starts, in elements). The tensors must be stored in the same dtypes.
   */
  async uploadParts(
    parts: readonly { t: AlignedTensor; start: number; count: number }[],
    into?: ((bytes: number) => GPUBuffer | null) | null,
  ): Promise<RawChunk & { at: number[]; numel: number }> {
    const { ctx } = this;
    const { base, models } = this.source;
    const inputs = [base, ...models];
    const first = parts[0]!.t;
    const stored = inputs.map((_, i) => storedDtype(this.source, first, i));
    const at: number[] = [];
    let numel = 0;
    for (const part of parts) {
      at.push(numel);
      numel += Math.ceil(part.count / this.blockElements) * this.blockElements;
    }
    const segments: RawSegment[] = [];
    let size = 0;
    for (const dtype of stored) {
      const raw = gpuDtypeOf(dtype);
      segments.push({ offset: size, dtype: raw });
      size += Math.ceil((numel * DTYPE_BYTES[raw]) / 16) * 16;
    }
    size = Math.max(size, 16);
    // Lays the chunk out in `view` (whose bytes may be left over from an earlier chunk: the padding is written too).
    const fill = async (view: Uint8Array) => {
      for (let i = 0; i < inputs.length; i++) {
        const end = i + 1 < segments.length ? segments[i + 1]!.offset : size;
        const width = DTYPE_BYTES[segments[i]!.dtype];
        let filled = segments[i]!.offset;
        for (let p = 0; p < parts.length; p++) {
          const { t, start, count } = parts[p]!;
          const from = segments[i]!.offset + at[p]! * width;
          view.fill(0, filled, from);
          filled = from + (await readRawInputInto(this.source, i, t, start, count, view, from, this.onRead));
        }
        view.fill(0, filled, end);
      }
    };
    // A chunk an earlier merge kept: no read, no upload (progress still counts its bytes as read).
    const resident = this.source.resident ?? null;
    const inputsId = resident ? inputsKey(base, models) : '';
    const layout = resident ? JSON.stringify([this.blockElements, parts.map((q) => [q.t.name, q.start, q.count])]) : '';
    const hit = resident?.get(ctx, inputsId, layout);
    if (hit) {
      for (const { t, count } of parts) for (let i = 0; i < inputs.length; i++) this.onRead?.(count * DTYPE_BYTES[storedDtype(this.source, t, i)]);
      return { buffer: hit.buffer, segments: hit.segments, bytes: hit.bytes, at, numel };
    }
    const reserved = resident?.reserve(ctx, inputsId, `${first.name}[${parts[0]!.start}:] raw inputs`, size, storage()) ?? null;
    const target = reserved?.buffer ?? into?.(size) ?? this.ownBuffer(size);
    try {
      const staging = await this.ring.begin(size);
      await fill(staging.view);
      staging.commit(target, 0, size);
    } catch (e) {
      reserved?.discard();
      throw e;
    }
    reserved?.keep(layout, segments);
    return { buffer: target, segments, bytes: size, at, numel };
  }

  /** This uploader's reused buffer, grown to at least `size` bytes. */
  private ownBuffer(size: number): GPUBuffer {
    if (!this.buffer || this.buffer.size < size) {
      if (this.buffer) this.ctx.destroyBuffer(this.buffer);
      this.buffer = null;
      this.buffer = this.ctx.createBuffer(`raw inputs`, size, storage());
    }
    return this.buffer;
  }

  destroy(): void {
    if (this.buffer) this.ctx.destroyBuffer(this.buffer);
    this.buffer = null;
    this.ring.destroy();
  }
}

export class ChunkStream {
  readonly tasks: number;
  private readonly cache: Map<string, Chunk> | null;
  private readonly uploader: RawUploader;
  private released = false;

  constructor(
    private readonly ctx: GpuContext,
    private readonly source: StreamSource,
    readonly tensors: AlignedTensor[],
    readonly options: StreamOptions,
  ) {
    this.tasks = source.models.length;
    const bytes = tensors.reduce((s, t) => s + t.numel * 4 * (this.tasks + 1), 0);
    this.cache = bytes <= options.cacheBytes ? new Map() : null;
    this.uploader = new RawUploader(ctx, source, options.onRead);
  }

  /** Whether chunks stay on the GPU between passes. */
  get cached(): boolean {
    return this.cache !== null;
  }

  /** The largest chunk, in elements (to size scratch buffers). */
  get maxChunk(): number {
    let max = 1;
    for (const t of this.tensors) for (const r of chunkRanges(t, this.options.granularity, this.options.chunkElements)) max = Math.max(max, r.count);
    return max;
  }

  /** Visits every chunk of every tensor in order. In the final pass cached chunks are freed as they are visited. */
  async forEach(visit: (c: Chunk) => Promise<void> | void, final = false): Promise<void> {
    for (const t of this.tensors) await this.forTensor(t, visit, final);
  }

  /** Visits the chunks of one tensor in element order. */
  async forTensor(t: AlignedTensor, visit: (c: Chunk) => Promise<void> | void, final = false): Promise<void> {
    for (const r of chunkRanges(t, this.options.granularity, this.options.chunkElements)) {
      throwIfAborted(this.source.signal);
      const key = `${t.name}@${r.start}`;
      let chunk = this.cache?.get(key);
      const fresh = !chunk;
      if (!chunk) {
        chunk = await this.load(t, r.start, r.count);
        if (this.cache && !final) this.cache.set(key, chunk);
      }
      try {
        await visit(chunk);
      } finally {
        if (final || (fresh && !this.cache)) {
          this.cache?.delete(key);
          this.free(chunk);
        }
      }
    }
  }

  /** Frees every cached chunk. */
  destroy(): void {
    if (this.released) return;
    this.released = true;
    for (const c of this.cache?.values() ?? []) this.free(c);
    this.cache?.clear();
    this.uploader.destroy();
  }

  private free(c: Chunk): void {
    this.ctx.destroyBuffer(c.base);
    this.ctx.destroyBuffer(c.stack);
  }

  private async load(t: AlignedTensor, start: number, count: number): Promise<Chunk> {
    const { ctx } = this;
    const base = ctx.createBuffer(`${t.name}[${start}:+${count}] theta0`, count * 4, storage());
    let stack: GPUBuffer;
    try {
      stack = ctx.createBuffer(`${t.name}[${start}:+${count}] task vectors`, count * 4 * this.tasks, storage());
    } catch (e) {
      // No room for the stack: theta0's buffer must not outlive the failed load (the caller may retry smaller).
      ctx.destroyBuffer(base);
      throw e;
    }
    try {
      const raw = await this.uploader.upload(t, start, count);
      await ctx.scoped(`decode ${t.name}`, () => decodeStack(ctx, { inputs: raw.buffer, segments: raw.segments, numel: count, base, stack }));
    } catch (e) {
      ctx.destroyBuffer(base);
      ctx.destroyBuffer(stack);
      throw e;
    }
    return { tensor: t, start, count, rowLength: rowLengthOf(t), base, stack };
  }
}
