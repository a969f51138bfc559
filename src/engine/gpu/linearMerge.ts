/**
 * The launcher of the fused output kernels with linear_merge's interface (shaders/_linear_io.wgsl: linear_merge,
 * magmax_output, consensus_output, tall_output), which read a chunk's raw inputs once and write its merged output(s)
 * and the partial sums of squares of the report's norms; and the helpers their passes share. The CPU twins are in
 * src/engine/reference/linearMerge.ts.
 */
import { GpuError } from '../errors';
import { DTYPE_BYTES, numelOf } from '../types';
import { pcgHash, stringId } from '../rng';
import { DTYPE_CODE, LINEAR_MAX_TASKS, MAX_DROP_PARTS, PARTIALS_GROUP, WORKGROUP_SIZE } from './constants';
import type { GpuContext } from './device';
import { encodeComputePass, workgroupGrid } from './dispatch';
import { bind } from './launch';
import { checkCount, modelLayout, specialisedPipeline, type RawDType, type RawSegment } from './kernels';

const F32_BYTES = 4;

/** Elements one linear_merge thread handles (the shader's BLOCK): inputs are padded to whole blocks. */
export const LINEAR_BLOCK = 16;

/** Threads of a linear_merge launch over `numel` elements (each writes one partial per norm row). */
export function linearMergeThreads(numel: number): number {
  return Math.max(1, Math.ceil(numel / LINEAR_BLOCK));
}

/** Bytes of linear_merge's output buffer for `numel` elements: whole blocks. */
export function linearMergeOutBytes(numel: number, dtype: RawDType): number {
  return linearMergeThreads(numel) * LINEAR_BLOCK * DTYPE_BYTES[dtype];
}

/**
 * Where a block-reading kernel (linear_merge, ties_scan, ties_output) finds the models in `segments`, and how many
 * bytes of the inputs it reads for `numel` elements in whole LINEAR_BLOCK blocks (the binding's size).
 */
export function rawBlockLayout(kernel: string, segments: readonly RawSegment[], numel: number): { bytes: number; firstVec4: number; strideVec4: number; model: RawDType } {
  const { first, firstVec4, strideVec4 } = modelLayout(kernel, segments);
  const tasks = segments.length - 1;
  const blockBytes = (d: RawDType) => linearMergeThreads(numel) * LINEAR_BLOCK * DTYPE_BYTES[d];
  const base = segments[0]!;
  return { bytes: Math.max(base.offset + blockBytes(base.dtype), first.offset + (tasks - 1) * strideVec4 * 16 + blockBytes(first.dtype)), firstVec4, strideVec4, model: first.dtype };
}

/** One chunk of a linear merge: raw inputs (segment 0 is theta0, then one per task) and per-task coefficients. */
export interface LinearMergeArgs {
  /** Segments zero-padded to whole LINEAR_BLOCK blocks; the models' segments share one dtype and are evenly spaced. */
  inputs: GPUBuffer;
  segments: readonly RawSegment[];
  numel: number;
  /**
   * One coefficient per model; plain linear_merge (no drop) also takes one more, theta0's: delta then adds
   * coeffs[T] * theta0 after the models (SLERP's s_a theta_a + s_b theta_b as theta0 + delta).
   */
  coeffs: Float32Array;
  outDtype: RawDType;
  /** linearMergeOutBytes(numel, outDtype) bytes or more, per output (tall_output writes one per model, one after the other). */
  out: GPUBuffer;
  /**
   * (T + 2) * linearMergeThreads(numel) f32 partial sums of squares (theta0, each tau_t, delta), or with `flags` one
   * f32 per thread, 1 where its block of merged values holds a NaN or an infinity (else 0); null to skip both.
   */
  partials: GPUBuffer | null;
  /** `partials` takes the non-finite flags instead of the norms (pipeline constant FINITE). */
  flags?: boolean;
  /** Which tensor the chunk is and where it starts in it (for kernels keyed by tensor and element: DARE's drop). */
  chunk?: { name: string; shape: readonly number[]; start: number };
  /**
   * A chunk of several whole tensors one after the other (FusedOutput's small tensors): each one's first element in
   * the chunk (`at`, a multiple of LINEAR_BLOCK, the first 0, ascending). DARE's drop keys each part by its own tensor
   * and its elements from 0; without `parts` the chunk is `chunk`'s tensor alone.
   */
  parts?: readonly { name: string; shape: readonly number[]; at: number }[];
}

/** A tensor as the fused kernels' batching sees it. */
export interface TensorId {
  name: string;
  shape: readonly number[];
}

/** Rows of a fused output kernel's partials before its extra rows: the T + 2 norms, or the one row of flags. */
export function normRowsOf(tasks: number, flags: boolean | undefined): number {
  return flags ? 1 : tasks + 2;
}

/** The pipeline constants NORMS and FINITE of a fused output launch (neither without partials). */
export function partialsConstants(a: { partials: GPUBuffer | null; flags?: boolean }): { NORMS: number; FINITE: number } {
  return { NORMS: a.partials && !a.flags ? 1 : 0, FINITE: a.partials && a.flags ? 1 : 0 };
}

/** Sums partials_sum leaves per row of `threads` partials: one per PARTIALS_GROUP threads. */
export function partialsGroups(threads: number): number {
  return Math.ceil(threads / PARTIALS_GROUP);
}

/**
 * Records partials_sum into `encoder`: `sums` [rows, partialsGroups(threads)] f32, each the in-order f32 sum of a run
 * of PARTIALS_GROUP consecutive partials of a row of `partials` [rows, threads]. `params` (PARTIALS_SUM_PARAMS_BYTES,
 * UNIFORM | COPY_DST) is the caller's, written here with queue.writeBuffer: the caller submits the encoder before it
 * records the next launch with the same `params` (queue order then gives each submit its own values).
 */
export function encodePartialsSum(ctx: GpuContext, encoder: GPUCommandEncoder, params: GPUBuffer, partials: GPUBuffer, sums: GPUBuffer, rows: number, threads: number): void {
  const kernel = 'partialsSum';
  const groups = partialsGroups(threads);
  checkCount(kernel, 'sums', rows * groups);
  if (rows * groups === 0) return;
  ctx.device.queue.writeBuffer(params, 0, new Uint32Array([threads, groups, rows, 0]));
  const grid = workgroupGrid(Math.ceil((rows * groups) / WORKGROUP_SIZE), ctx.info.limits.maxComputeWorkgroupsPerDimension);
  encodeComputePass(ctx, encoder, kernel, 'partials_sum', [{ buffer: params }, bind(ctx, kernel, partials, rows * threads * F32_BYTES), bind(ctx, kernel, sums, rows * groups * F32_BYTES)], grid);
}

/** Bytes of partials_sum's uniform parameters. */
export const PARTIALS_SUM_PARAMS_BYTES = 16;

/**
 * Float64 totals of each row of linear_merge's partials ([rows, threads] f32): theta0, each tau_t, delta; over threads
 * [from, to) (a tensor of a batched chunk), added in thread order from 0.
 */
export function foldLinearPartials(partials: Float32Array, rows: number, from = 0, to = partials.length / rows): Float64Array {
  const threads = partials.length / rows;
  const totals = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = r * threads + from; k < r * threads + to; k++) sum += partials[k]!;
    totals[r] = sum;
  }
  return totals;
}

/**
 * DARE's drop of one tensor (linear_merge's DROP): the seed (model t's RNG key in tensor `name` is rngKey(seed, t,
 * stringId(name))), the drop rate and the scale of the kept entries.
 */
export interface DareTensorDrop {
  seed: number;
  p: number;
  scale: number;
}

/**
 * The entries a masked linear merge keeps (linear_merge's MASKED: src/engine/merge/keptBits.ts): per element one
 * word, bit t set where model t's entry is kept, and the scale of the kept entries (1 leaves them as they are).
 */
export interface KeptEntries {
  /** The words of elements [start, start + count) of tensor `name`. */
  words(name: string, start: number, count: number): Uint32Array;
  scale: number;
}

/** Most models whose kept entries a word holds. */
export const KEPT_MAX_TASKS = 32;

/** Consensus Merging's masks for one tensor (consensus_output): each model's mask lambda, and the tasks a weight needs. */
export interface ConsensusTensorMask {
  lambdas: Float32Array;
  k: number;
}

/** The kernels with linear_merge's interface (shaders/_linear_io.wgsl). */
export type LinearShader = 'linear_merge' | 'magmax_output' | 'consensus_output' | 'tall_output';

/** The kernels that take each tensor's masks (ConsensusTensorMask; tall_output ignores k). */
const TAKES_MASKS: readonly LinearShader[] = ['consensus_output', 'tall_output'];

/**
 * The fused linear merge (linear_merge.wgsl): out = encode(theta0 + sum_t coeffs[t] * (decode(model t) - theta0)),
 * computed exactly as unpack + task_vector + combine + pack_add compute it (with theta0's coefficient, coeffs[T],
 * combine over the task vectors and theta0). With shader 'magmax_output', MagMax's
 * output (magmax_select before combine); with a `drop`, linear_merge gives DARE's (dare_drop before combine): `drop`
 * gives each tensor's seed, rate and scale (null: the tensor is merged undropped, without the RNG work), and every
 * chunk must say which tensor it is and where it starts (or, covering several small tensors, which they are: `parts`).
 * With `keep` (the MASKED pipeline), the contributions of a merge whose kept entries are given: each model's entries
 * where its bit is set, times the scale, else +0 (bitmask_apply before combine). With shader 'consensus_output',
 * Consensus Merging's output
 * (then Task Arithmetic: tall_mask and count_mask before combine), `mask` giving each tensor's mask lambdas and k
 * (every chunk says which tensor it is). With shader 'tall_output', TALL masks' T models (one per model, `mask`
 * giving the lambdas, its k unused; the coefficients are not read). Holds its
 * parameter buffer, so a merge reuses it for every chunk (queue writes are ordered with submitted work, so one buffer
 * serves all chunks).
 */
export class LinearMergeKernel {
  /** Partial rows beyond the norms (none: see FusedKernel). */
  readonly extraRows = 0;
  private readonly params: GPUBuffer;
  /** Bound where a launch has no partials or (linear_merge) no kept entries: 16 bytes, one vec4. */
  private readonly none: GPUBuffer;
  /** With kept entries: the words of the chunk being recorded (rewritten per chunk, in queue order, as params). */
  private keepWords: GPUBuffer | null = null;

  constructor(
    private readonly ctx: GpuContext,
    private readonly shader: LinearShader = 'linear_merge',
    private readonly drop?: (name: string, shape: readonly number[]) => DareTensorDrop | null,
    private readonly mask?: (name: string) => ConsensusTensorMask,
    private readonly keep?: KeptEntries,
  ) {
    if (drop && shader !== 'linear_merge') throw new GpuError('validation', `${shader}: only linear_merge applies a DARE drop`);
    if (keep && (shader !== 'linear_merge' || drop)) throw new GpuError('validation', `${shader}: only linear_merge without a drop keeps given entries`);
    if (TAKES_MASKS.includes(shader) !== (mask !== undefined)) throw new GpuError('validation', `${shader}: ${TAKES_MASKS.join(' and ')}, and only they, need each tensor's masks`);
    this.params = ctx.createBuffer(`${shader} params`, LINEAR_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    try {
      this.none = ctx.createBuffer(`${shader} no partials`, 16, GPUBufferUsage.STORAGE);
    } catch (e) {
      ctx.destroyBuffer(this.params);
      throw e;
    }
  }

  /** Outputs per chunk (FusedKernel): one per model for tall_output, else one. */
  outputs(tasks: number): number {
    return this.shader === 'tall_output' ? tasks : 1;
  }

  /** Several small tensors may share a launch (FusedKernel); a drop keys each by its own tensor (LinearMergeArgs.parts). */
  readonly batchable = true;

  /** Tensors one launch covers at most: with a drop, the records its uniform holds (MAX_DROP_PARTS). */
  get maxParts(): number {
    return this.drop ? MAX_DROP_PARTS : Infinity;
  }

  /**
   * With masks, two tensors share a launch only with the same mask lambdas (bit for bit) and k: one launch takes one
   * set. With a drop, only when both are dropped alike (same seed, rate and scale) or neither is (`linear_only`).
   */
  sharesLaunch(a: TensorId, b: TensorId): boolean {
    if (this.drop) return sameDrop(this.drop(a.name, a.shape), this.drop(b.name, b.shape));
    if (!this.mask) return true;
    const [x, y] = [this.mask(a.name), this.mask(b.name)];
    return x.k === y.k && sameValues(x.lambdas, y.lambdas);
  }

  /** Records the kernel into `encoder` (the caller submits). */
  encode(encoder: GPUCommandEncoder, a: LinearMergeArgs): void {
    const { ctx } = this;
    const kernel = this.label;
    const tasks = a.segments.length - 1;
    checkCount(kernel, 'numel', a.numel);
    if (tasks < 1 || tasks > LINEAR_MAX_TASKS || (a.coeffs.length !== tasks && !(this.takesBaseCoeff && a.coeffs.length === tasks + 1))) {
      const also = this.takesBaseCoeff ? ' (and optionally one for theta0)' : '';
      throw new GpuError('validation', `${kernel}: needs theta0, 1..${LINEAR_MAX_TASKS} model segments and one coefficient per model${also}, got ${a.segments.length} segments, ${a.coeffs.length} coefficients`);
    }
    const coeffs = a.coeffs.subarray(0, tasks);
    const baseCoeff = a.coeffs.length > tasks ? a.coeffs[tasks]! : null;
    const drop = this.drop ? dropLaunch(this.label, a, this.drop) : null;
    const mask = this.maskOf(a, tasks);
    const layout = rawBlockLayout(kernel, a.segments, a.numel);
    if (a.numel === 0) return;
    const threads = linearMergeThreads(a.numel);
    const kept = this.keptOf(a, tasks, threads);
    const bindings = [
      { buffer: this.params },
      bind(ctx, kernel, a.inputs, layout.bytes),
      bind(ctx, kernel, a.out, this.outputs(tasks) * linearMergeOutBytes(a.numel, a.outDtype)),
      a.partials ? bind(ctx, kernel, a.partials, normRowsOf(tasks, a.flags) * threads * F32_BYTES) : { buffer: this.none },
    ];
    if (this.shader === 'linear_merge') bindings.push(kept ? bind(ctx, kernel, this.keepBuffer(kept), kept.byteLength) : { buffer: this.none });
    // Params: sixteen 32-bit fields (drop_parts the seventh, mask_k the tenth, base_coeff the eleventh, out_stride the
    // twelfth, drop_seed the thirteenth), the coefficient vec4s, then with masks the key vec4s (the mask lambdas' f32
    // bits), and with a drop the part records after both arrays. Only the words a launch reads are written.
    const words = new Uint32Array(HEADER_WORDS + (mask ? LINEAR_MAX_TASKS : 0) + 4 * Math.ceil(tasks / 4));
    const outStride = this.outputs(tasks) > 1 ? linearMergeOutBytes(a.numel, a.outDtype) / 16 : 0;
    words.set([a.numel, tasks, threads, 0, layout.firstVec4, layout.strideVec4, drop ? drop.table.length / 4 : 0, 0, 0, mask?.k ?? 0, 0, outStride, drop?.seedHash ?? 0]);
    const scale = drop?.scale ?? (kept ? this.keep!.scale : 1);
    new Float32Array(words.buffer).set([drop?.p ?? 0, scale], 7);
    new Float32Array(words.buffer).set([baseCoeff ?? 0], 10);
    new Float32Array(words.buffer, 4 * HEADER_WORDS).set(coeffs);
    if (mask) new Float32Array(words.buffer, 4 * (HEADER_WORDS + LINEAR_MAX_TASKS)).set(mask.lambdas);
    ctx.device.queue.writeBuffer(this.params, 0, words);
    if (drop) ctx.device.queue.writeBuffer(this.params, 4 * (HEADER_WORDS + 2 * LINEAR_MAX_TASKS), drop.table);
    const constants: Record<string, number> = { BASE_DTYPE: DTYPE_CODE[a.segments[0]!.dtype], MODEL_DTYPE: DTYPE_CODE[layout.model], OUT_DTYPE: DTYPE_CODE[a.outDtype], ...partialsConstants(a), SAME_COEFF: sameCoefficients(coeffs) ? 1 : 0 };
    if (this.shader === 'linear_merge') Object.assign(constants, { DROP: drop ? 1 : 0, MASKED: kept ? 1 : 0, SCALE: (drop || kept) && Math.fround(scale) !== 1 ? 1 : 0, BASE_TERM: baseCoeff !== null ? 1 : 0 });
    const pipeline = specialisedPipeline(ctx, this.shader, constants);
    encodeComputePass(ctx, encoder, kernel, pipeline, bindings, workgroupGrid(Math.ceil(threads / WORKGROUP_SIZE), ctx.info.limits.maxComputeWorkgroupsPerDimension));
  }

  /** Whether chunks may pass one coefficient more, theta0's (BASE_TERM): plain linear_merge only. */
  private get takesBaseCoeff(): boolean {
    return this.shader === 'linear_merge' && !this.drop && !this.keep;
  }

  /** What errors call the kernel. */
  private get label(): string {
    return this.drop ? 'linear_merge with DARE' : this.keep ? 'linear_merge with kept entries' : this.shader;
  }

  /** The kept entries' words of chunk `a` on whole blocks (each part's at its place), or null without kept entries. */
  private keptOf(a: LinearMergeArgs, tasks: number, threads: number): Uint32Array<ArrayBuffer> | null {
    if (!this.keep) return null;
    const kernel = this.label;
    if (tasks > KEPT_MAX_TASKS) throw new GpuError('validation', `${kernel}: at most ${KEPT_MAX_TASKS} models, got ${tasks}`);
    const parts = launchParts(kernel, a);
    if (!parts) throw new GpuError('validation', `${kernel}: needs the chunk's tensor and start (the kept entries are per element)`);
    const words = new Uint32Array(threads * LINEAR_BLOCK);
    for (const q of parts) {
      const w = this.keep.words(q.name, q.start, q.count);
      if (w.length !== q.count || q.at + q.count > words.length) throw new GpuError('validation', `${kernel}: ${w.length} kept-entry words for ${q.count} elements of ${q.name}`);
      words.set(w, q.at);
    }
    return words;
  }

  /** Writes the chunk's words into the reused buffer (grown as needed; a dropped buffer still serves submitted work). */
  private keepBuffer(words: Uint32Array<ArrayBuffer>): GPUBuffer {
    if (!this.keepWords || this.keepWords.size < words.byteLength) {
      if (this.keepWords) this.ctx.destroyBuffer(this.keepWords);
      this.keepWords = null;
      this.keepWords = this.ctx.createBuffer('linear_merge kept entries', words.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    }
    this.ctx.device.queue.writeBuffer(this.keepWords, 0, words);
    return this.keepWords;
  }

  /** Consensus's masks for chunk `a` (checked), else null. */
  private maskOf(a: LinearMergeArgs, tasks: number): ConsensusTensorMask | null {
    if (!this.mask) return null;
    const kernel = this.label;
    if (!a.chunk) throw new GpuError('validation', `${kernel}: needs the chunk's tensor (the masks' lambdas are per tensor)`);
    const m = this.mask(a.chunk.name);
    if (m.lambdas.length !== tasks) throw new GpuError('validation', `${kernel}: ${m.lambdas.length} mask lambdas for ${tasks} models`);
    if (!Number.isInteger(m.k) || m.k < 0 || m.k > 2 ** 32 - 1) throw new GpuError('validation', `${kernel}: k must be an integer in 0..2^32-1, got ${m.k}`);
    return m;
  }

  destroy(): void {
    this.ctx.destroyBuffer(this.params);
    this.ctx.destroyBuffer(this.none);
    if (this.keepWords) this.ctx.destroyBuffer(this.keepWords);
    this.keepWords = null;
  }
}

/** A DARE drop as one launch takes it: rate, scale, pcgHash(seed), and the part records of params.parts. */
export interface DropLaunch {
  p: number;
  scale: number;
  seedHash: number;
  table: Uint32Array<ArrayBuffer>;
}

/**
 * The DARE drop for chunk `a` of `kernel` (checked; shaders/_dare_drop.wgsl): its rate, scale, pcgHash(seed) and part
 * records (first thread, first element in the tensor, tensor id, 0), or null where the chunk's tensors, all alike,
 * are merged undropped (`drop` gives null for them).
 */
export function dropLaunch(kernel: string, a: LinearMergeArgs, drop: (name: string, shape: readonly number[]) => DareTensorDrop | null): DropLaunch | null {
  const parts = launchParts(kernel, a);
  if (!parts) throw new GpuError('validation', `${kernel}: needs the chunk's tensor and start (the drop mask is keyed by them)`);
  if (parts.length > MAX_DROP_PARTS) throw new GpuError('validation', `${kernel}: ${parts.length} tensors in one launch, at most ${MAX_DROP_PARTS}`);
  const drops = parts.map((q) => drop(q.name, q.shape));
  const d = drops[0]!;
  if (drops.some((x) => !sameDrop(x, d))) {
    throw new GpuError('validation', `${kernel}: the tensors of one launch must be dropped alike (${parts.map((q) => q.name).join(', ')})`);
  }
  if (!d) return null;
  const table = new Uint32Array(4 * parts.length);
  parts.forEach((q, i) => {
    const { start } = q;
    const end = i + 1 < parts.length ? parts[i + 1]!.at : a.numel;
    if (!Number.isInteger(start) || start < 0 || start + (end - q.at) > 2 ** 32) {
      throw new GpuError('validation', `${kernel}: element offset ${start} + numel ${end - q.at} must lie in 0..2^32`);
    }
    table.set([q.at / LINEAR_BLOCK, start, stringId(q.name), 0], 4 * i);
  });
  return { p: d.p, scale: d.scale, seedHash: pcgHash(d.seed >>> 0), table };
}

/** Whether two tensors are dropped alike (same seed, rate and scale), or neither is. */
export function sameDrop(x: DareTensorDrop | null, y: DareTensorDrop | null): boolean {
  return x === null || y === null ? x === y : x.seed === y.seed && Object.is(x.p, y.p) && Object.is(x.scale, y.scale);
}

/**
 * The tensors launch `a` covers, each from element `at` of the chunk and element `start` of its tensor over `count`
 * elements: its `parts` (whole tensors, checked to start at 0, then at ascending multiples of LINEAR_BLOCK), or its
 * `chunk` alone; null where it gives neither.
 */
function launchParts(kernel: string, a: LinearMergeArgs): { name: string; shape: readonly number[]; at: number; start: number; count: number }[] | null {
  if (!a.parts) return a.chunk ? [{ ...a.chunk, at: 0, count: a.numel }] : null;
  a.parts.forEach((q, i) => {
    if (!Number.isInteger(q.at) || q.at % LINEAR_BLOCK !== 0 || (i === 0 ? q.at !== 0 : q.at <= a.parts![i - 1]!.at) || q.at >= Math.max(a.numel, 1)) {
      throw new GpuError('validation', `${kernel}: part ${q.name} starts at element ${q.at}: parts start at 0, then ascending multiples of ${LINEAR_BLOCK} within the chunk`);
    }
  });
  return a.parts.length ? a.parts.map((q) => ({ ...q, start: 0, count: numelOf(q.shape) })) : null;
}

/**
 * Whether every coefficient has the same f32 bits (+0 and -0 differ: they give products of different signs), so that
 * a fused kernel reads one coefficient instead of one per model (SAME_COEFF, shaders/_coeffs.wgsl).
 */
export function sameCoefficients(coeffs: ArrayLike<number>): boolean {
  const bits = new Uint32Array(Float32Array.from(coeffs).buffer);
  return bits.every((b) => b === bits[0]);
}

/** Whether `a` and `b` hold the same values element by element (Object.is: +0 and -0 differ, as their products do). */
export function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** 32-bit fields of the uniform Params of _linear_io.wgsl before its arrays. */
const HEADER_WORDS = 16;

/** Size of the uniform Params of _linear_io.wgsl: its fields, the coefficient and key vec4s, the drop's part records. */
const LINEAR_PARAMS_BYTES = 4 * HEADER_WORDS + 2 * 4 * LINEAR_MAX_TASKS + 16 * MAX_DROP_PARTS;
