/**
 * Global TIES straight from raw model bytes, in two kernels (src/engine/merge/plans/tiesFast.ts drives them):
 * - TiesScan (ties_scan.wgsl): one statistics pass. Per task, the keys at or above a bracket and the keys inside it
 *   (for the exact trim threshold at a rank), and the elected signs of the columns the brackets decide (all of them
 *   when the brackets are the exact thresholds). State lives on the GPU across the pass's chunks and is read back once.
 * - TiesOutputKernel (ties_output.wgsl): the output pass's kernel, trim + elect + disjoint merge + combine + encode,
 *   with linear_merge's interface, so FusedOutput (merge/plans/fusedOutput.ts) drives it like the linear kernel; with
 *   a drop (DARE then TIES), each task vector goes through DARE's drop first, keyed as linear_merge keys it.
 * CPU twins: src/engine/reference/tiesFused.ts.
 */
import { GpuError } from '../errors';
import type { DisjointMerge } from '../reference/methods/signElect';
import { DTYPE_CODE, LINEAR_MAX_TASKS, MAX_DROP_PARTS, TIES_SCAN_SHARDS, WORKGROUP_SIZE } from './constants';
import type { GpuContext } from './device';
import { encodeComputePass, workgroupGrid } from './dispatch';
import { readBuffer, specialisedPipeline, type RawSegment } from './kernels';
import { dropLaunch, linearMergeOutBytes, linearMergeThreads, normRowsOf, partialsConstants, rawBlockLayout, sameCoefficients, sameDrop, type DareTensorDrop, type LinearMergeArgs, type TensorId } from './linearMerge';
import { bind } from './launch';
import { countReciprocals } from './mergeKernels';

/**
 * What a fused output kernel does with one chunk (LinearMergeKernel and TiesOutputKernel). Its per-thread partials
 * are tasks + 2 rows of squared norms (theta0, each tau_t, delta), or with `flags` one row of non-finite flags, then
 * `extraRows` rows of its own.
 */
export interface FusedKernel {
  readonly extraRows: number;
  /**
   * Models written per chunk for `tasks` models (default 1): output o from byte o * linearMergeOutBytes(numel) of
   * `out` (TALL masks: one per model).
   */
  outputs?(tasks: number): number;
  /**
   * Whether one launch may cover several small tensors, one after the other (FusedOutput batches them, passing
   * LinearMergeArgs.parts): each output element depends on that element's inputs alone, or (DARE's drop) on its tensor
   * and its position in it, which `parts` gives, never on any other element.
   */
  readonly batchable?: boolean;
  /** With `batchable`: the most tensors one launch covers (default: no limit). */
  readonly maxParts?: number;
  /** With `batchable`: whether tensors `a` and `b` may share a launch, besides equal coefficients (default: yes). */
  sharesLaunch?(a: TensorId, b: TensorId): boolean;
  /** Records the chunk's kernel into `encoder` (the caller submits). */
  encode(encoder: GPUCommandEncoder, a: LinearMergeArgs): void;
  /** Takes each chunk's totals of the extra rows (float64). */
  takeExtra?(totals: Float64Array): void;
  /**
   * From a chunk's extra totals: whether its output depends on a setting that a second kernel may change (global
   * TIES: it has tied columns, which take the majority sign); such chunks are the ones FusedOutput.rerun runs again.
   */
  provisional?(totals: Float64Array): boolean;
  destroy(): void;
}

const MODE = { sum: 0, mean: 1, max: 2 } as const;
const F32_BYTES = 4;

/** Counts of columns by elected sign, and of tied ones (zero sum, a delta that may depend on the majority sign). */
export interface TiesTally {
  positive: number;
  negative: number;
  tied: number;
}

/**
 * The output kernel of global TIES with fixed thresholds, majority sign and merge rule (see ties_output.wgsl); it
 * also adds up, over the chunks it ran, the tally that decides the majority sign and the tied columns. `drop`: DARE's
 * drop per tensor (null: that tensor undropped), applied to the task vectors before the trim (DARE then TIES).
 */
export class TiesOutputKernel implements FusedKernel {
  readonly extraRows = 3;
  /** Column by column: a batched tensor's tally and tied columns are its own (a rerun takes it alone). */
  readonly batchable = true;
  readonly tally: TiesTally = { positive: 0, negative: 0, tied: 0 };
  private readonly params: GPUBuffer;
  private readonly thresholds: GPUBuffer;
  private readonly recip: GPUBuffer;
  private readonly none: GPUBuffer;
  private readonly tasks: number;

  constructor(
    private readonly ctx: GpuContext,
    private readonly s: { thresholds: Uint32Array; majority: -1 | 0 | 1; merge: DisjointMerge; drop?: (name: string, shape: readonly number[]) => DareTensorDrop | null },
  ) {
    this.tasks = s.thresholds.length;
    if (this.tasks < 1 || this.tasks > LINEAR_MAX_TASKS) throw new GpuError('validation', `ties_output: needs 1..${LINEAR_MAX_TASKS} thresholds, got ${this.tasks}`);
    const made: GPUBuffer[] = [];
    const make = (label: string, bytes: number, usage: GPUBufferUsageFlags) => {
      const b = ctx.createBuffer(`ties_output ${label}`, bytes, usage);
      made.push(b);
      return b;
    };
    try {
      this.params = make('params', PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.thresholds = make('thresholds', this.tasks * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
      this.recip = make('reciprocals', (this.tasks + 1) * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
      this.none = make('no partials', 4, GPUBufferUsage.STORAGE);
    } catch (e) {
      for (const b of made) ctx.destroyBuffer(b);
      throw e;
    }
    ctx.device.queue.writeBuffer(this.thresholds, 0, Uint32Array.from(s.thresholds));
    ctx.device.queue.writeBuffer(this.recip, 0, Float32Array.from(countReciprocals(this.tasks)));
  }

  /** Tensors one launch covers at most: with a drop, the records its uniform holds (MAX_DROP_PARTS). */
  get maxParts(): number {
    return this.s.drop ? MAX_DROP_PARTS : Infinity;
  }

  /** With a drop, tensors share a launch only when both are dropped alike or neither is. */
  sharesLaunch(a: TensorId, b: TensorId): boolean {
    return !this.s.drop || sameDrop(this.s.drop(a.name, a.shape), this.s.drop(b.name, b.shape));
  }

  encode(encoder: GPUCommandEncoder, a: LinearMergeArgs): void {
    const { ctx } = this;
    const kernel = this.s.drop ? 'tiesOutput with DARE' : 'tiesOutput';
    const tasks = a.segments.length - 1;
    if (tasks !== this.tasks || a.coeffs.length !== tasks) {
      throw new GpuError('validation', `${kernel}: set up for ${this.tasks} models, got ${tasks} model segments and ${a.coeffs.length} coefficients`);
    }
    const drop = this.s.drop ? dropLaunch(kernel, a, this.s.drop) : null;
    const layout = rawBlockLayout(kernel, a.segments, a.numel);
    if (a.numel === 0) return;
    const threads = linearMergeThreads(a.numel);
    const bindings = [
      { buffer: this.params },
      bind(ctx, kernel, a.inputs, layout.bytes),
      { buffer: this.thresholds },
      { buffer: this.recip },
      bind(ctx, kernel, a.out, linearMergeOutBytes(a.numel, a.outDtype)),
      a.partials ? bind(ctx, kernel, a.partials, (normRowsOf(tasks, a.flags) + this.extraRows) * threads * F32_BYTES) : { buffer: this.none },
    ];
    // Twelve 32-bit fields (majority the seventh, then the drop's: drop_parts, p, scale, drop_seed), the coefficient
    // vec4s, and with a drop its part records after the whole coefficient array. Only the words a launch reads are
    // written.
    const words = new Uint32Array(HEADER_WORDS + 4 * Math.ceil(tasks / 4));
    words.set([a.numel, tasks, threads, 0, layout.firstVec4, layout.strideVec4, 0, drop ? drop.table.length / 4 : 0, 0, 0, drop?.seedHash ?? 0]);
    new Int32Array(words.buffer)[6] = this.s.majority;
    new Float32Array(words.buffer).set([drop?.p ?? 0, drop?.scale ?? 1], 8);
    new Float32Array(words.buffer, 4 * HEADER_WORDS).set(a.coeffs);
    ctx.device.queue.writeBuffer(this.params, 0, words);
    if (drop) ctx.device.queue.writeBuffer(this.params, 4 * (HEADER_WORDS + LINEAR_MAX_TASKS), drop.table);
    const constants = {
      BASE_DTYPE: DTYPE_CODE[a.segments[0]!.dtype],
      MODEL_DTYPE: DTYPE_CODE[layout.model],
      OUT_DTYPE: DTYPE_CODE[a.outDtype],
      MODE: MODE[this.s.merge],
      ...partialsConstants(a),
      SAME_COEFF: sameCoefficients(a.coeffs) ? 1 : 0,
      DROP: drop ? 1 : 0,
      SCALE: drop && Math.fround(drop.scale) !== 1 ? 1 : 0,
    };
    const pipeline = specialisedPipeline(ctx, 'ties_output', constants);
    encodeComputePass(ctx, encoder, kernel, pipeline, bindings, workgroupGrid(Math.ceil(threads / WORKGROUP_SIZE), ctx.info.limits.maxComputeWorkgroupsPerDimension));
  }

  takeExtra(totals: Float64Array): void {
    this.tally.positive += totals[0]!;
    this.tally.negative += totals[1]!;
    this.tally.tied += totals[2]!;
  }

  provisional(totals: Float64Array): boolean {
    return totals[2]! > 0;
  }

  destroy(): void {
    for (const b of [this.params, this.thresholds, this.recip, this.none]) this.ctx.destroyBuffer(b);
  }
}

/** ties_output's uniform Params: twelve 32-bit fields, the coefficient vec4s, then the drop's part records. */
const HEADER_WORDS = 12;
const PARAMS_BYTES = 4 * (HEADER_WORDS + LINEAR_MAX_TASKS + 4 * MAX_DROP_PARTS);

/** What one scan pass found (see ties_scan.wgsl). */
export interface TiesScanResult {
  /** Per task: keys >= its bracket's upper end. */
  above: Float64Array;
  /** Columns the bracket decided, by elected sign. */
  positive: number;
  negative: number;
  /**
   * Per task: the keys inside its bracket (all of them), or null where there were more than the capacity; empty when
   * the scan was told not to list.
   */
  listed: (Uint32Array | null)[];
}

/** One scan pass of global TIES over raw chunks (see the file comment and ties_scan.wgsl). */
export class TiesScan {
  private readonly params: GPUBuffer;
  private readonly bracket: GPUBuffer;
  private readonly acc: GPUBuffer;
  private readonly counters: GPUBuffer;
  private readonly listed: GPUBuffer;
  private readonly tasks: number;

  /**
   * brackets: per task (lo, above) keys; the pass takes chunks of at most maxNumel elements; listCap keys per task
   * are kept, in TIES_SCAN_SHARDS equal shards (a shard that overflows overflows its task's list); `signs`: whether to
   * elect the decided columns' signs (else positive and negative stay 0); `list` false: list nothing (the results'
   * lists are empty; the host lists the keys, merge/plans/tiesKeyLists.ts).
   */
  constructor(
    private readonly ctx: GpuContext,
    private readonly s: { brackets: Uint32Array; maxNumel: number; listCap: number; signs: boolean; list?: boolean },
  ) {
    this.tasks = s.brackets.length / 2;
    if (!Number.isInteger(this.tasks) || this.tasks < 1) throw new GpuError('validation', `ties_scan: needs a (lo, above) pair per task, got ${s.brackets.length} words`);
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const made: GPUBuffer[] = [];
    const make = (label: string, bytes: number, usage = storage) => {
      const b = ctx.createBuffer(`ties_scan ${label}`, Math.max(4, bytes), usage);
      made.push(b);
      return b;
    };
    try {
      this.params = make('params', 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.bracket = make('brackets', s.brackets.byteLength);
      this.acc = make('counts', (this.tasks + 2) * this.stride * 4);
      this.counters = make('list sizes', this.tasks * TIES_SCAN_SHARDS * 4);
      this.listed = make('listed keys', this.tasks * TIES_SCAN_SHARDS * this.listShard * 4);
    } catch (e) {
      for (const b of made) ctx.destroyBuffer(b);
      throw e;
    }
    const q = ctx.device.queue;
    q.writeBuffer(this.bracket, 0, Uint32Array.from(s.brackets));
    q.writeBuffer(this.acc, 0, new Uint32Array((this.tasks + 2) * this.stride));
    q.writeBuffer(this.counters, 0, new Uint32Array(this.tasks * TIES_SCAN_SHARDS));
  }

  private get lists(): boolean {
    return this.s.list ?? true;
  }

  /** Capacity of one shard of a task's key list (1 when the scan lists nothing). */
  private get listShard(): number {
    return this.lists ? Math.max(1, Math.ceil(this.s.listCap / TIES_SCAN_SHARDS)) : 1;
  }

  /** Slots per row of the per-thread counts: the threads of the largest chunk. */
  private get stride(): number {
    return linearMergeThreads(this.s.maxNumel);
  }

  /** Records the scan of one chunk. */
  encode(encoder: GPUCommandEncoder, a: { inputs: GPUBuffer; segments: readonly RawSegment[]; numel: number }): void {
    const { ctx } = this;
    const kernel = 'tiesScan';
    const tasks = a.segments.length - 1;
    if (tasks !== this.tasks) throw new GpuError('validation', `${kernel}: set up for ${this.tasks} models, got ${tasks} model segments`);
    if (a.numel > this.s.maxNumel) throw new GpuError('validation', `${kernel}: chunk of ${a.numel} elements, set up for at most ${this.s.maxNumel}`);
    const layout = rawBlockLayout(kernel, a.segments, a.numel);
    if (a.numel === 0) return;
    const threads = linearMergeThreads(a.numel);
    const bindings = [
      { buffer: this.params },
      bind(ctx, kernel, a.inputs, layout.bytes),
      { buffer: this.bracket },
      { buffer: this.acc },
      { buffer: this.counters },
      { buffer: this.listed },
    ];
    ctx.device.queue.writeBuffer(this.params, 0, Uint32Array.from([a.numel, tasks, threads, this.stride, layout.firstVec4, layout.strideVec4, this.listShard, 0]));
    const pipeline = specialisedPipeline(ctx, 'ties_scan', { BASE_DTYPE: DTYPE_CODE[a.segments[0]!.dtype], MODEL_DTYPE: DTYPE_CODE[layout.model], SIGNS: this.s.signs ? 1 : 0, LIST: this.lists ? 1 : 0 });
    encodeComputePass(ctx, encoder, kernel, pipeline, bindings, workgroupGrid(Math.ceil(threads / WORKGROUP_SIZE), ctx.info.limits.maxComputeWorkgroupsPerDimension));
  }

  /** Reads the pass's results back (after every chunk was submitted). */
  async results(): Promise<TiesScanResult> {
    const { ctx, tasks } = this;
    const S = TIES_SCAN_SHARDS;
    const words = async (buf: GPUBuffer, count: number) => {
      const bytes = await readBuffer(ctx, buf, Math.max(4, count * 4));
      return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
    };
    const acc = await words(this.acc, (tasks + 2) * this.stride);
    const total = (row: number) => {
      let s = 0;
      for (let k = row * this.stride; k < (row + 1) * this.stride; k++) s += acc[k]!;
      return s;
    };
    const counts = { above: Float64Array.from({ length: tasks }, (_, t) => total(t)), positive: total(tasks), negative: total(tasks + 1) };
    if (!this.lists) return { ...counts, listed: Array.from({ length: tasks }, () => new Uint32Array(0)) };
    const sizes = (await words(this.counters, tasks * S)).slice();
    // A task's list is whole when none of its shards overflowed; its keys are the shards' filled parts, in order.
    const cap = this.listShard;
    const shardSizes = (t: number) => Array.from(sizes.subarray(t * S, (t + 1) * S));
    const fits = Array.from({ length: tasks }, (_, t) => shardSizes(t).every((n) => n <= cap));
    const all = fits.some(Boolean) ? await words(this.listed, tasks * S * cap) : new Uint32Array(0);
    const listed = fits.map((ok, t) => {
      if (!ok) return null;
      const parts = shardSizes(t).map((n, h) => all.subarray((t * S + h) * cap, (t * S + h) * cap + n));
      const out = new Uint32Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    });
    return { ...counts, listed };
  }

  destroy(): void {
    for (const b of [this.params, this.bracket, this.acc, this.counters, this.listed]) this.ctx.destroyBuffer(b);
  }
}
