/**
 * The output pass in one kernel per chunk, for plans that provide one (GpuPlan.fused): the linear plans (Task
 * Arithmetic, simple average, LiNeS on Task Arithmetic, Model Stock, DARE on Task Arithmetic: linear_merge), MagMax
 * (magmax_output), Consensus on Task Arithmetic (consensus_output), TALL masks (tall_output: one model per task, all
 * from one launch and one readback) and global TIES (ties_output; also under LiNeS). The raw base and model bytes go
 * to the GPU once (RawUploader); the kernel decodes them, forms theta0 + delta, encodes the output dtype and leaves
 * per-thread partial sums of squares for the report's norms. Each chunk is one submit whose readback (output bytes and
 * partials in one staging buffer) is awaited only once later chunks are submitted, so reading back overlaps the next
 * chunks' uploads and kernels.
 *
 * Chunk sizes and queue depth depend on the adapter. A CPU-emulated one runs a chunk's kernel on the same cores that
 * copy the next chunk's bytes: chunks of a few MiB (which stay in the CPU's caches) with three in flight measured
 * about 1.4x faster on SwiftShader than one whole tensor at a time (Task Arithmetic over 8 models of ViT-B/32 width/2).
 * On a GPU the host's side bounds the pass: its main thread copies every input byte into the mapped staging buffers
 * and every output byte out of the mapped readback buffer (1.5-2 GB/s on an H200, where writes reach 9-15 GB/s), so the
 * chunks are sized for overlap, not for fewer launches: Task Arithmetic over 8 full-size f32 models took 656-765 ms
 * with 16 MiB chunks and three in flight against 755-873 ms with 64 MiB and two (H200, interleaved runs; 8 and 32 MiB
 * and a fourth chunk in flight within the spread: bench/README.md, 2026-11-30). The readback
 * being slow, the partials (T + 2 floats per 16 elements: 62% of an f32 output's bytes for 8 models) measured 223 ms of
 * Task Arithmetic's 0.91 s on an H100 (a breakdown whose spread was as wide), so a chunk of one tensor adds them in runs
 * of PARTIALS_GROUP on the GPU first (partials_sum), sixteen times fewer to read back and fold: 7 ms in the next such
 * breakdown.
 * Used when nothing needs the task-vector stack (no interference metrics). Collected weights (runMerge's `collect`,
 * theta0 + delta in f32 for evaluation) are the kernel's own output where that output is f32: each chunk's encoder
 * copies it into the tensor's buffer, so the values scored are the bytes written (the stack path's, bit for bit).
 *
 * Small tensors (SMALL_TENSOR) written one after another with the same coefficients and encodings share a chunk, each
 * on whole blocks of LINEAR_BLOCK elements so that no thread's partials span two tensors, where the kernel allows it
 * (FusedKernel.batchable, up to its maxParts tensors): the per-chunk upload, launch and readback, not the bytes, are
 * most of their cost. Each tensor's norms, extra rows and provisional flag come from its own threads' partials, and
 * the kernel is told where each tensor starts (DARE's drop is keyed by tensor and element).
 *
 * Without norms (runMerge's `norms` false) the kernels write one flag per thread instead of the T + 2 partial sums of
 * squares: whether its 16 merged values hold a NaN or an infinity. The T + 2 stores per thread, their readback (62% of
 * an f32 output's bytes for 8 models) and their fold measured about a fifth of Task Arithmetic's time on SwiftShader
 * (8 x F32, full ViT-B/32, two runs of four pairs: medians of the ratio to the copy kernel 47.3% and 45.2% with them,
 * 60.7% and 61.7% without). A chunk with a flag
 * set is read again on the host, which counts each task vector's NaN and infinite values there (nonFinite()). A
 * non-finite task-vector entry always reaches the merged values of a linear merge and of MagMax; where a mask may drop
 * it (DARE, Consensus, TIES), the kernel also flags a sum taken before the mask (shaders/_linear_io.wgsl).
 *
 * When the writers hold their writes (merge/heldWriter.ts), the chunks the kernel calls provisional (global TIES: tied
 * columns, whose sign is the estimated majority) are remembered, so that `rerun` can run just those again with
 * another kernel and patch their held bytes in place.
 */
import { throwIfAborted } from '../../errors';
import type { GpuContext } from '../../gpu/device';
import { LINEAR_MAX_TASKS, REDUCTION_BLOCK } from '../../gpu/constants';
import { StagingReader, type RawDType } from '../../gpu/kernels';
import { encodePartialsSum, foldLinearPartials, LINEAR_BLOCK, linearMergeOutBytes, linearMergeThreads, normRowsOf, PARTIALS_SUM_PARAMS_BYTES, partialsGroups, sameValues, type LinearMergeArgs } from '../../gpu/linearMerge';
import type { FusedKernel } from '../../gpu/tiesFused';
import { DTYPE_BYTES, type DType } from '../../types';
import type { AlignedTensor } from '../align';
import type { TensorWriter } from '../heldWriter';
import { decodeToF32 } from '../../tensor/dtype';
import type { NonFiniteCount, TensorReport } from '../report';
import { hostTaskVectors, inputDtypes, RawUploader, type RawChunkCache, type StreamSource } from '../stream';
import { outputBytes, packDtypeOf } from './util';

/**
 * Raw input bytes per chunk (upper bound), chunks in flight, and whether a chunk's partials are added in runs on the
 * GPU before they are read back (partials_sum), per kind of adapter (see the header).
 */
// On SwiftShader the extra launch costs what the smaller readback saves (0.9-1.3x in paired merges); on a GPU the
// readback is the slow part (the partials' readback measured 223 ms of Task Arithmetic's 0.91 s on an H100, 7 ms summed).
const SOFTWARE = { chunkBytes: 4 * 2 ** 20, inFlight: 3, sumPartials: false };
const HARDWARE = { chunkBytes: 16 * 2 ** 20, inFlight: 3, sumPartials: true };
/**
 * Tensors of at most this many elements share a chunk with the small tensors written just before them (biases, norms,
 * small projections): every chunk costs an upload, a launch and a readback, about 2 ms each on SwiftShader, so the
 * demo suite's 72 tensors (64 of them this small, in 9 runs) took that per tensor.
 */
export const SMALL_TENSOR = 16384;

// A function, not a constant: in Node, GPUBufferUsage exists only once the platform has installed Dawn's globals.
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
const F32_BYTES = 4;

/** Norm sums of one tensor, completed by its last chunk's readback. */
interface Sums {
  report: TensorReport;
  baseSq: number;
  tvSq: Float64Array;
  /** Each chunk's squared norm of the merged delta, added up in chunk order once all are in (again after a rerun). */
  mergedParts: number[];
  chunksLeft: number;
}

/** One chunk of a tensor: where it is and how it is merged and written. */
interface ChunkJob {
  t: AlignedTensor;
  start: number;
  count: number;
  /** The chunk's position in its tensor (its slot in Sums.mergedParts). */
  index: number;
  coeffs: Float32Array;
  packDtype: RawDType;
  outDtype: DType;
  sums: Sums;
  /** The tensor's f32 buffer that receives theta0 + delta (runMerge's `collect`), or null. */
  collect: GPUBuffer | null;
}

/** A copy of `count` f32 outputs from element `from` of a chunk's output to element `at` of a collected buffer. */
interface CollectCopy {
  to: GPUBuffer;
  from: number;
  at: number;
  count: number;
}

/** The copy that collects a chunk of one tensor (none without a buffer). */
const collectCopies = (job: ChunkJob): CollectCopy[] => (job.collect ? [{ to: job.collect, from: 0, at: job.start, count: job.count }] : []);

/** A submitted chunk whose readback is still to be consumed. */
interface Pending extends Part {
  read: () => Promise<Uint8Array[]>;
}

/** A chunk's job and its writers; as a small tensor waiting to share a chunk, the whole tensor (start 0). */
interface Part extends ChunkJob {
  writers: readonly TensorWriter[];
}

/** A submitted chunk of several small tensors: each part's first element in it, and the chunk's elements. */
interface PendingBatch {
  parts: Part[];
  at: number[];
  numel: number;
  read: () => Promise<Uint8Array[]>;
}

/** A written chunk that a rerun may patch: its job and the array every writer was handed. */
interface Provisional extends ChunkJob {
  out: Uint8Array;
}

/**
 * Elements per chunk of a pass over the raw inputs of `tasks` models: chunkElements (a multiple of 1024), fewer when
 * the raw inputs (at most 4 bytes per element each) would exceed the adapter's chunk size or one storage binding; fewer
 * are a multiple of REDUCTION_BLOCK (so that SLERP's and Model Stock's Gram pass splits a tensor where the output pass
 * does and leaves it its chunks: tensorGrams), or of LINEAR_BLOCK where not even one such block fits.
 */
export function rawChunkStep(ctx: GpuContext, tasks: number, chunkElements: number): number {
  const perElement = 4 * (tasks + 1);
  const { limits, isSoftware } = ctx.info;
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, (isSoftware ? SOFTWARE : HARDWARE).chunkBytes) - 16 * (tasks + 1);
  const elements = Math.floor(limit / perElement);
  const block = elements >= REDUCTION_BLOCK ? REDUCTION_BLOCK : LINEAR_BLOCK;
  const fits = Math.max(LINEAR_BLOCK, Math.floor(elements / block) * block);
  return Math.min(chunkElements, fits);
}

/** Chunks a pass over raw inputs keeps submitted before it waits for the oldest (see the file comment). */
export function rawChunksInFlight(ctx: GpuContext): number {
  return ctx.info.isSoftware ? SOFTWARE.inFlight : HARDWARE.inFlight;
}

/** Whether a pass over raw inputs adds each chunk's partials in runs on the GPU before reading them back. */
export function sumsPartials(ctx: GpuContext): boolean {
  return (ctx.info.isSoftware ? SOFTWARE : HARDWARE).sumPartials;
}

/** Whether every model stores tensor `t` in one GPU-decoded dtype (the fused kernels decode all models alike). */
export function sharesDtype(source: StreamSource, t: AlignedTensor): boolean {
  return new Set(inputDtypes(source, t).slice(1)).size === 1;
}

export class FusedOutput {
  private readonly uploader: RawUploader;
  private readonly reader: StagingReader;
  private readonly buffers = new Map<string, GPUBuffer>();
  private readonly pending: (Pending | PendingBatch)[] = [];
  /** Small tensors waiting to share a chunk (see SMALL_TENSOR), consecutive in the writers' order. */
  private readonly batch: Part[] = [];
  /** Chunks submitted and not yet read back. */
  private readonly depth: number;
  private readonly sumPartials: boolean;
  /** With `hold`: the chunks the kernel called provisional, for `rerun`. */
  private readonly provisional: Provisional[] = [];
  /** Partial rows before the kernel's extra rows: T + 2 norms, or (without norms) one of flags. */
  private readonly normRows: number;
  /** Models the kernel writes per chunk (FusedKernel.outputs): writer o then takes output o, else every writer output 0. */
  private readonly outputs: number;
  /** Without norms: NaN / infinite counts by tensor and model (see nonFinite), and the flagged chunks already counted. */
  private readonly found = new Map<string, NonFiniteCount>();
  private readonly counted = new Set<string>();

  constructor(
    private readonly ctx: GpuContext,
    private readonly source: StreamSource,
    private readonly tasks: number,
    private readonly chunkElements: number,
    private readonly kernel: FusedKernel,
    onRead?: (bytes: number) => void,
    /** Chunks a previous pass kept on the GPU (taken instead of uploaded; same chunk boundaries: rawChunkStep). */
    private readonly cache: RawChunkCache | null = null,
    /** The writers hold what they are given (HeldWriter): remember provisional chunks for `rerun`. */
    private readonly hold = false,
    /** Partial sums of squares for the report's norms; false: non-finite flags (see the header). */
    private readonly norms = true,
  ) {
    this.normRows = normRowsOf(tasks, !norms);
    this.outputs = kernel.outputs?.(tasks) ?? 1;
    if (this.outputs > 1 && hold) throw new Error('FusedOutput: a kernel with several outputs cannot hold them for a rerun');
    this.depth = rawChunksInFlight(ctx);
    this.sumPartials = sumsPartials(ctx);
    this.uploader = new RawUploader(ctx, source, onRead, LINEAR_BLOCK, this.depth + 1);
    this.reader = new StagingReader(ctx, 'fused output readback');
  }

  /** Whether the kernel takes tensor `t`: at most LINEAR_MAX_TASKS models, all decoded from one dtype. */
  handles(t: AlignedTensor): boolean {
    return this.tasks <= LINEAR_MAX_TASKS && sharesDtype(this.source, t);
  }

  /** Whether the pass can collect theta0 + delta in f32 for a tensor written in `outDtype`: its one output is f32. */
  collects(outDtype: DType): boolean {
    return this.outputs === 1 && packDtypeOf(outDtype) === 'F32';
  }

  /**
   * Submits every chunk of tensor `t` with delta = sum_t coeffs[t] * tau_t, written in `outDtype` to `writers` (one
   * per output when the kernel writes several) and, given `collect` (only where `collects(outDtype)`), copied in f32 into it.
   * The returned report's norms are filled in once its last chunk is read back (by a later call or `flush`).
   */
  async tensor(t: AlignedTensor, coeffs: Float32Array, outDtype: DType, writers: readonly TensorWriter[], collect: GPUBuffer | null = null): Promise<TensorReport> {
    if (collect && !this.collects(outDtype)) throw new Error(`FusedOutput: cannot collect ${t.name} in f32 from a ${outDtype} output`);
    const report: TensorReport = this.norms
      ? { name: t.name, shape: t.shape, dtype: t.dtype, outputDtype: outDtype, action: 'merge', baseNorm: 0, taskVectorNorms: new Array<number>(this.tasks).fill(0), mergedNorm: 0 }
      : { name: t.name, shape: t.shape, dtype: t.dtype, outputDtype: outDtype, action: 'merge', baseNorm: null, taskVectorNorms: null, mergedNorm: null };
    const chunk = rawChunkStep(this.ctx, this.tasks, this.chunkElements);
    const step = Math.min(chunk, Math.max(t.numel, 1));
    const sums: Sums = { report, baseSq: 0, tvSq: new Float64Array(this.tasks), mergedParts: [], chunksLeft: Math.ceil(t.numel / step) };
    const packDtype = packDtypeOf(outDtype);
    if (this.kernel.batchable && t.numel > 0 && t.numel <= Math.min(SMALL_TENSOR, chunk)) {
      const part: Part = { t, start: 0, count: t.numel, index: 0, coeffs, packDtype, outDtype, sums, writers, collect };
      if (this.batch.length > 0 && !this.joins(part, chunk)) await this.submitBatch();
      this.batch.push(part);
      return report;
    }
    await this.submitBatch();
    for (let start = 0, index = 0; start < t.numel; start += step, index++) {
      throwIfAborted(this.source.signal);
      const job: ChunkJob = { t, start, count: Math.min(step, t.numel - start), index, coeffs, packDtype, outDtype, sums, collect };
      const kept = this.cache?.take(t, start, job.count) ?? null;
      const raw = kept ?? (await this.uploader.upload(t, start, job.count));
      const read = this.submit(this.kernel, job, raw, writers.length > 0, this.sumPartials, collectCopies(job));
      if (kept) this.cache!.release(kept);
      this.pending.push({ ...job, read, writers });
      while (this.pending.length >= this.depth) await this.consume();
    }
    return report;
  }

  /**
   * After the pass (flushed, with `hold`): runs the provisional chunks again with `kernel` (which it then frees),
   * patches their held bytes in place and their tensors' merged norms. Returns how many chunks ran.
   */
  async rerun(kernel: FusedKernel): Promise<number> {
    if (!this.hold) throw new Error('FusedOutput.rerun: the pass did not hold its output');
    const jobs = this.provisional.splice(0);
    try {
      for (const job of jobs) {
        throwIfAborted(this.source.signal);
        const raw = await this.uploader.upload(job.t, job.start, job.count);
        const [bytes, totals] = await this.settle(await this.submit(kernel, job, raw, job.out.byteLength > 0, this.sumPartials, collectCopies(job))(), kernel);
        job.out.set(outputBytes(bytes!, job.outDtype));
        if (this.norms) {
          job.sums.mergedParts[job.index] = totals[this.tasks + 1]!;
          job.sums.report.mergedNorm = Math.sqrt(sumInOrder(job.sums.mergedParts));
        } else if (totals[0]! > 0) await this.countNonFinite(job, [job.out]);
      }
    } finally {
      kernel.destroy();
    }
    return jobs.length;
  }

  /**
   * Without norms: the NaN and infinite values counted in the chunks whose merged values the kernel flagged, per tensor
   * and model (model null: the merged values alone), in the order found.
   */
  nonFinite(): NonFiniteCount[] {
    return [...this.found.values()].map((n) => ({ ...n }));
  }

  /** Consumes every pending readback (before writing anything else, and at the end). */
  async flush(): Promise<void> {
    await this.submitBatch();
    while (this.pending.length) await this.consume();
  }

  destroy(): void {
    this.pending.length = 0;
    this.batch.length = 0;
    this.uploader.destroy();
    this.kernel.destroy();
    this.reader.destroy();
    for (const b of this.buffers.values()) this.ctx.destroyBuffer(b);
    this.buffers.clear();
  }

  /** partials_sum's uniform parameters (rewritten per chunk, in queue order). */
  private sumParams(): GPUBuffer {
    let b = this.buffers.get('partials sum params');
    if (!b) {
      b = this.ctx.createBuffer('fused output partials sum params', PARTIALS_SUM_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.buffers.set('partials sum params', b);
    }
    return b;
  }

  private buffer(slot: string, bytes: number): GPUBuffer {
    const have = this.buffers.get(slot);
    if (have && have.size >= bytes) return have;
    if (have) this.ctx.destroyBuffer(have);
    const buf = this.ctx.createBuffer(`fused output ${slot}`, Math.max(bytes, 16), storage());
    this.buffers.set(slot, buf);
    return buf;
  }

  /**
   * Records `kernel` on chunk `job` of `raw` and submits it with its readback (the output bytes when `output`) and the
   * `copies` of its f32 output into collected buffers. The partials come back per thread, or with `sumPartials` (a
   * chunk of one tensor: no run of threads spans two) as partials_sum's runs of PARTIALS_GROUP threads. `parts`: the
   * tensors of a chunk of several (the kernel keys DARE's drop by them).
   */
  private submit(
    kernel: FusedKernel,
    job: ChunkJob,
    raw: { buffer: GPUBuffer; segments: LinearMergeArgs['segments'] },
    output: boolean,
    sumPartials: boolean,
    copies: readonly CollectCopy[],
    parts?: LinearMergeArgs['parts'],
  ): () => Promise<Uint8Array[]> {
    const { count, packDtype } = job;
    const stride = linearMergeOutBytes(count, packDtype);
    const out = this.buffer('out', this.outputs * stride);
    const rows = this.normRows + kernel.extraRows;
    const threads = linearMergeThreads(count);
    const partials = this.buffer('partials', rows * threads * 4);
    const encoder = this.ctx.device.createCommandEncoder({ label: `fused output ${job.t.name}` });
    // No error scope per chunk (popping one waits on the device): runMerge scopes the whole output pass.
    const chunk = { name: job.t.name, shape: job.t.shape, start: job.start };
    kernel.encode(encoder, { inputs: raw.buffer, segments: raw.segments, numel: count, coeffs: job.coeffs, outDtype: packDtype, out, partials, flags: !this.norms, chunk, ...(parts ? { parts } : {}) });
    for (const c of copies) encoder.copyBufferToBuffer(out, c.from * F32_BYTES, c.to, c.at * F32_BYTES, c.count * F32_BYTES);
    let read = { buffer: partials, bytes: rows * threads * 4 };
    if (sumPartials) {
      const sums = this.buffer('partial sums', rows * partialsGroups(threads) * 4);
      encodePartialsSum(this.ctx, encoder, this.sumParams(), partials, sums, rows, threads);
      read = { buffer: sums, bytes: rows * partialsGroups(threads) * 4 };
    }
    return this.reader.start(encoder, [{ buffer: out, bytes: output ? (this.outputs - 1) * stride + count * DTYPE_BYTES[packDtype] : 0 }, read]);
  }

  /**
   * Each output's packed bytes of elements [from, from + count) of a chunk of `numel` elements read back by `submit`
   * (output o starts at o * linearMergeOutBytes(numel)).
   */
  private split(bytes: Uint8Array, numel: number, packDtype: RawDType, from: number, count: number): Uint8Array[] {
    const stride = linearMergeOutBytes(numel, packDtype);
    const width = DTYPE_BYTES[packDtype];
    return Array.from({ length: this.outputs }, (_, o) => bytes.subarray(o * stride + from * width, o * stride + (from + count) * width));
  }

  /** Writes a chunk's outputs: output o to writer o when the kernel writes several, else output 0 to every writer. */
  private async write(name: string, outs: readonly Uint8Array[], writers: readonly TensorWriter[]): Promise<void> {
    for (let w = 0; w < writers.length; w++) await writers[w]!.write(name, this.outputs > 1 ? outs[w]! : outs[0]!, true);
  }

  /** A chunk's read-back output bytes and its folded partials (norm rows or the flags, then the kernel's extra rows). */
  private async settle(parts: Uint8Array[], kernel: FusedKernel): Promise<[Uint8Array, Float64Array]> {
    const [bytes, partialBytes] = parts;
    const totals = foldLinearPartials(new Float32Array(partialBytes!.buffer, partialBytes!.byteOffset, partialBytes!.byteLength / 4), this.normRows + kernel.extraRows);
    return [bytes!, totals];
  }

  /** Whether `part` may join the waiting batch: same coefficients and encodings, a kernel that lets it, room in one chunk. */
  private joins(part: Part, step: number): boolean {
    const head = this.batch[0]!;
    const used = this.batch.reduce((n, p) => n + Math.ceil(p.count / LINEAR_BLOCK) * LINEAR_BLOCK, 0);
    return (
      this.batch.length < (this.kernel.maxParts ?? Infinity) &&
      used + part.count <= step &&
      part.packDtype === head.packDtype &&
      sameValues(part.coeffs, head.coeffs) &&
      (this.kernel.sharesLaunch?.(part.t, head.t) ?? true) &&
      inputDtypes(this.source, part.t).join() === inputDtypes(this.source, head.t).join()
    );
  }

  /** Submits the waiting small tensors as one chunk, each on whole blocks (so no kernel thread spans two). */
  private async submitBatch(): Promise<void> {
    if (this.batch.length === 0) return;
    const parts = this.batch.splice(0);
    throwIfAborted(this.source.signal);
    const raw = await this.uploader.uploadParts(parts);
    // Per-thread partials: each part's norms come from its own threads.
    const copies = parts.flatMap((p, i) => (p.collect ? [{ to: p.collect, from: raw.at[i]!, at: 0, count: p.count }] : []));
    const tensors = parts.map((p, i) => ({ name: p.t.name, shape: p.t.shape, at: raw.at[i]! }));
    const read = this.submit(this.kernel, { ...parts[0]!, count: raw.numel }, raw, parts.some((p) => p.writers.length > 0), false, copies, tensors);
    this.pending.push({ parts, at: raw.at, numel: raw.numel, read });
    while (this.pending.length >= this.depth) await this.consume();
  }

  /**
   * Adds a chunk's norm totals to its tensor's sums and fills the tensor's report with its last chunk; without norms,
   * counts the chunk's NaN and infinite values when its flags say it has some (`outs`: each output's bytes).
   */
  private async addSums(job: ChunkJob, totals: Float64Array, outs: readonly Uint8Array[]): Promise<void> {
    if (!this.norms) {
      if (totals[0]! > 0) await this.countNonFinite(job, outs);
      return;
    }
    const { sums } = job;
    sums.baseSq += totals[0]!;
    for (let t = 0; t < this.tasks; t++) sums.tvSq[t] = sums.tvSq[t]! + totals[t + 1]!;
    sums.mergedParts[job.index] = totals[this.tasks + 1]!;
    if (--sums.chunksLeft === 0) {
      sums.report.baseNorm = Math.sqrt(sums.baseSq);
      sums.report.taskVectorNorms = Array.from(sums.tvSq, Math.sqrt);
      sums.report.mergedNorm = Math.sqrt(sumInOrder(sums.mergedParts));
    }
  }

  /**
   * A flagged chunk (without norms): reads its inputs again and counts each task vector's NaN and infinite values
   * (tau = model - theta0 in f32, as the kernels form it); where none has any, the merged values' (`outs`, the chunk's
   * output bytes, all outputs together). A chunk is counted once (a rerun flags it again).
   */
  private async countNonFinite(job: ChunkJob, outs: readonly Uint8Array[]): Promise<void> {
    const { t, start, count } = job;
    const key = `${t.name}@${start}`;
    if (this.counted.has(key)) return;
    this.counted.add(key);
    const add = (model: number | null, n: number) => {
      const at = `${model}/${t.name}`;
      const seen = this.found.get(at);
      if (seen) seen.count += n;
      else this.found.set(at, { tensor: t.name, model, count: n });
    };
    const nonFinite = (x: Float32Array) => x.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0);
    const counts = (await hostTaskVectors(this.source, t, start, count)).map(nonFinite);
    counts.forEach((n, m) => n > 0 && add(m, n));
    if (counts.some((n) => n > 0)) return;
    const merged = outs.reduce((n, out) => n + nonFinite(decodeToF32(out, job.outDtype)), 0);
    if (merged > 0) add(null, merged);
  }

  private async consume(): Promise<void> {
    const p = this.pending.shift()!;
    if ('parts' in p) return this.consumeBatch(p);
    const [bytes, totals] = await this.settle(await p.read(), this.kernel);
    const extra = totals.subarray(this.normRows);
    this.kernel.takeExtra?.(extra);
    const outs = this.split(bytes, p.count, p.packDtype, 0, p.count).map((b) => outputBytes(b, p.outDtype));
    await this.addSums(p, totals, outs);
    const { read: _read, writers, ...job } = p;
    if (this.hold && this.kernel.provisional?.(extra)) this.provisional.push({ ...job, out: outs[0]! });
    await this.write(job.t.name, outs, writers);
  }

  /** A batch's readback: each part's output bytes and norm totals (its threads' partials), in order. */
  private async consumeBatch(b: PendingBatch): Promise<void> {
    const [bytes, partialBytes] = await b.read();
    const rows = this.normRows + this.kernel.extraRows;
    const partials = new Float32Array(partialBytes!.buffer, partialBytes!.byteOffset, partialBytes!.byteLength / 4);
    for (let i = 0; i < b.parts.length; i++) {
      const part = b.parts[i]!;
      const from = b.at[i]! / LINEAR_BLOCK;
      const totals = foldLinearPartials(partials, rows, from, from + linearMergeThreads(part.count));
      const extra = totals.subarray(this.normRows);
      this.kernel.takeExtra?.(extra);
      const outs = this.split(bytes!, b.numel, part.packDtype, b.at[i]!, part.count).map((o) => outputBytes(o, part.outDtype));
      await this.addSums(part, totals, outs);
      const { writers, ...job } = part;
      // A rerun takes the tensor alone (the kernel's output does not depend on where a column sits).
      if (this.hold && this.kernel.provisional?.(extra)) this.provisional.push({ ...job, out: outs[0]! });
      await this.write(job.t.name, outs, writers);
    }
  }
}

/** A sum from 0 in array order (the order the chunks' partials used to be added in as they arrived). */
function sumInOrder(parts: readonly number[]): number {
  let s = 0;
  for (const x of parts) s += x;
  return s;
}
