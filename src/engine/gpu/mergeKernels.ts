/**
 * Launchers for the elementwise merge kernels (issue 3): they turn a stack of task vectors, f32 [rows, numel] with
 * row r = task r's task vector for one chunk of one tensor, in place into per-task contributions c_r whose
 * weighted sum (`combine`) is the merged delta. trim_mask, dare_drop, disjoint_merge, ties_merge, magmax_select and
 * count_mask work in place; tall_mask writes usage counts (and packed masks), bitmask_apply one task's TALL
 * delta. The reductions (sign_sum, row_stats, gram, sign_stats, usage_histogram) are in mergeReductions.ts.
 *
 * A stack is one binding whatever the number of rows, so no kernel approaches maxStorageBuffersPerShaderStage.
 * Each launcher checks its arguments (GpuError naming the kernel), uploads its small per-row tables, submits
 * one pass and frees what it made. src/engine/reference/mergeKernels.ts holds the CPU twins.
 */
import { GpuError } from '../errors';
import type { DisjointMerge } from '../reference/methods/signElect';
import type { GpuContext } from './device';
import { THREAD_ELEMENTS } from './constants';
import { itemGrid } from './dispatch';
import { bind, f32Bits, launch } from './launch';

/** How disjoint_merge elects a sign where the column sum is zero. */
export type ZeroSignRule =
  /** TIES global scope: the model-wide majority sign (sign of the total of sign_sum), -1, 0 or +1. */
  | { rule: 'majority'; majority: -1 | 0 | 1 }
  /** mergekit tensor scope: a zero sum elects +1. */
  | { rule: 'plus' };

/** DARE drop settings for one chunk of one tensor. */
export interface DareChunk {
  /** One RNG key per row: rngKey(seed, task, stringId(tensorName)) (src/engine/rng.ts). */
  keys: Uint32Array;
  /** Index within the tensor of the chunk's first element. */
  elementOffset: number;
  /** Drop rate in [0, 1), compared as an f32. */
  p: number;
  /** Factor of kept entries (1 / (1 - p) when rescaling, else 1), applied as an f32. */
  scale: number;
}

/** Where tall_mask writes its results. */
export interface TallMaskOutputs {
  /** u32 [numel]: number of tasks whose mask uses each weight. */
  counts: GPUBuffer;
  /** u32 [numel]: bit t set iff task t's mask uses the weight (needs rows <= 32). */
  bitfield?: GPUBuffer;
}

/** Largest row count whose masks fit a u32 bitfield. */
export const BITFIELD_ROWS = 32;

const F32_BYTES = 4;
const MERGE_MODE: Record<DisjointMerge, number> = { sum: 0, mean: 1, max: 2 };

/** Throws unless rows >= 1 and numel >= 0 are integers whose product indexes fit in u32 (`rowsName` names rows). */
export function checkStack(kernel: string, rows: number, numel: number, rowsName = 'rows'): void {
  if (!Number.isInteger(rows) || rows < 1) throw new GpuError('validation', `${kernel}: ${rowsName} must be an integer >= 1, got ${rows}`);
  if (!Number.isInteger(numel) || numel < 0) throw new GpuError('validation', `${kernel}: numel must be a non-negative integer, got ${numel}`);
  if (rows * numel > 2 ** 32 - 1) throw new GpuError('validation', `${kernel}: ${rows} x ${numel} elements exceed u32 indexing`);
}

/** Throws unless `table` has one entry per row. */
function checkPerRow(kernel: string, what: string, table: ArrayLike<number>, rows: number): void {
  if (table.length !== rows) throw new GpuError('validation', `${kernel}: ${what} needs one entry per row (${rows}), got ${table.length}`);
}

/** round_f32(1 / n) for n = 0..rows (entry 0 is 0): the divisors of disjoint_merge's mean and of sign_stats. */
export function countReciprocals(rows: number): Float32Array {
  const out = new Float32Array(rows + 1);
  for (let n = 1; n <= rows; n++) out[n] = 1 / n;
  return out;
}

/** Runs `fn` with a new storage buffer holding `data`, then frees it (work already submitted still sees it). */
export function withTable<T>(ctx: GpuContext, label: string, data: Uint32Array | Float32Array, fn: (table: GPUBufferBinding) => T): T {
  const buf = ctx.createBuffer(label, data.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  try {
    if (data.byteLength > 0) ctx.device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    return fn({ buffer: buf });
  } finally {
    ctx.destroyBuffer(buf);
  }
}

/**
 * A stack's rows as whole vec4s, for kernels that read 4 floats per step (several times faster on CPU-emulated
 * devices than one float per step): each row must start on a 16-byte boundary. Rows of numel % 4 != 0 floats are
 * copied to a reused buffer with rows `quads` vec4s apart; the words past numel are left undefined (kernels skip them).
 */
export class QuadRows {
  private copy: GPUBuffer | null = null;

  constructor(
    private readonly ctx: GpuContext,
    private readonly label: string,
  ) {}

  /** `stack` itself when numel is a multiple of 4, else the copy; `quads` = ceil(numel / 4) vec4s per row. */
  of(stack: GPUBuffer, rows: number, numel: number): { buffer: GPUBuffer; quads: number } {
    const quads = Math.ceil(numel / 4);
    if (numel % 4 === 0) return { buffer: stack, quads };
    const bytes = rows * quads * 16;
    if (!this.copy || this.copy.size < bytes) {
      if (this.copy) this.ctx.destroyBuffer(this.copy);
      this.copy = null;
      // Assigned only once created: a failed allocation leaves nothing to free.
      this.copy = this.ctx.createBuffer(`${this.label} aligned rows`, bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    }
    this.copyRows(stack, this.copy, rows, numel, true);
    return { buffer: this.copy, quads };
  }

  /** After a kernel changed the rows returned by `of`: writes them back into `stack` (nothing to do when aligned). */
  writeBack(stack: GPUBuffer, rows: number, numel: number): void {
    if (numel % 4 === 0) return;
    if (!this.copy) throw new GpuError('validation', `${this.label}: writeBack before of()`);
    this.copyRows(this.copy, stack, rows, numel, false);
  }

  private copyRows(src: GPUBuffer, dst: GPUBuffer, rows: number, numel: number, toAligned: boolean): void {
    const stride = Math.ceil(numel / 4) * 16;
    const encoder = this.ctx.device.createCommandEncoder({ label: `${this.label} aligned rows` });
    for (let r = 0; r < rows; r++) {
      const packed = r * numel * F32_BYTES;
      const aligned = r * stride;
      encoder.copyBufferToBuffer(src, toAligned ? packed : aligned, dst, toAligned ? aligned : packed, numel * F32_BYTES);
    }
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  destroy(): void {
    if (this.copy) this.ctx.destroyBuffer(this.copy);
    this.copy = null;
  }
}

/**
 * Calls `fn` with the stack's rows as whole vec4s (`quads` per row: QuadRows, a copy only where numel % 4 != 0) and
 * frees the copy once `fn` has submitted its work (or has settled, when it returns a promise).
 */
export function withQuadRows<R>(ctx: GpuContext, kernel: string, stack: GPUBuffer, rows: number, numel: number, fn: (buffer: GPUBuffer, quads: number) => R): R {
  const aligned = new QuadRows(ctx, kernel);
  let result: R;
  try {
    const { buffer, quads } = aligned.of(stack, rows, numel);
    result = fn(buffer, quads);
  } catch (e) {
    aligned.destroy();
    throw e;
  }
  // Destroying after submit is safe: submitted work still sees the copy.
  if (result instanceof Promise) return result.finally(() => aligned.destroy()) as R;
  aligned.destroy();
  return result;
}

function grid(ctx: GpuContext, numel: number) {
  return itemGrid(numel, ctx.info.limits.maxComputeWorkgroupsPerDimension);
}

/**
 * TIES trim in place: row r keeps x where (bits(x) & 0x7fffffff) >= thresholdBits[r], else +0 (0 keeps the row).
 * `thresholdBits` is host data (one u32 per row) or a GPU buffer holding it (e.g. written by a selection kernel).
 */
export function trimMask(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number, thresholdBits: Uint32Array | GPUBuffer): void {
  const kernel = 'trim_mask';
  checkStack(kernel, rows, numel);
  if (thresholdBits instanceof Uint32Array) checkPerRow(kernel, 'thresholdBits', thresholdBits, rows);
  if (numel === 0) return;
  const run = (thresholds: GPUBufferBinding) =>
    launch(ctx, kernel, [numel, rows], [thresholds, bind(ctx, kernel, stack, rows * numel * F32_BYTES)], grid(ctx, numel));
  if (thresholdBits instanceof Uint32Array) withTable(ctx, `${kernel} thresholds`, thresholdBits, run);
  else run(bind(ctx, kernel, thresholdBits, rows * 4));
}

/** DARE in place: row r keeps x * scale where rng_uniform(keys[r], elementOffset + j) >= p, else +0. */
export function dareDrop(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number, dare: DareChunk): void {
  const kernel = 'dare_drop';
  checkStack(kernel, rows, numel);
  checkPerRow(kernel, 'keys', dare.keys, rows);
  const { elementOffset, p, scale } = dare;
  if (!Number.isInteger(elementOffset) || elementOffset < 0 || elementOffset + numel > 2 ** 32) {
    throw new GpuError('validation', `${kernel}: elementOffset ${elementOffset} + numel ${numel} must lie in 0..2^32`);
  }
  if (!(p >= 0 && p < 1)) throw new GpuError('validation', `${kernel}: p must lie in [0, 1), got ${p}`);
  if (!Number.isFinite(scale)) throw new GpuError('validation', `${kernel}: scale must be finite, got ${scale}`);
  if (numel === 0) return;
  withTable(ctx, `${kernel} keys`, dare.keys, (keys) =>
    launch(ctx, kernel, [numel, rows, elementOffset, f32Bits(p), f32Bits(scale)], [keys, bind(ctx, kernel, stack, rows * numel * F32_BYTES)], grid(ctx, numel)),
  );
}

/** The (mode, rule, majority) parameters of disjoint_merge and ties_merge, after checking them. */
function disjointParams(kernel: string, merge: DisjointMerge, zeroSign: ZeroSignRule): number[] {
  if (!(merge in MERGE_MODE)) throw new GpuError('validation', `${kernel}: merge must be sum, mean or max, got ${String(merge)}`);
  const majority = zeroSign.rule === 'majority' ? zeroSign.majority : 0;
  if (zeroSign.rule !== 'plus' && (zeroSign.rule !== 'majority' || ![-1, 0, 1].includes(majority))) {
    throw new GpuError('validation', `${kernel}: zeroSign must be {rule: 'plus'} or {rule: 'majority', majority: -1 | 0 | 1}`);
  }
  return [MERGE_MODE[merge], zeroSign.rule === 'plus' ? 1 : 0, majority];
}

/**
 * TIES sign election and disjoint merge in place on trimmed task vectors (reference/methods/signElect.ts): each
 * row becomes its contribution under `merge` (sum, mean or max), with `zeroSign` for columns that sum to zero.
 */
export function disjointMerge(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number, merge: DisjointMerge, zeroSign: ZeroSignRule): void {
  const kernel = 'disjoint_merge';
  checkStack(kernel, rows, numel);
  const mode = disjointParams(kernel, merge, zeroSign);
  if (numel === 0) return;
  const params = [numel, rows, ...mode];
  withTable(ctx, `${kernel} reciprocals`, countReciprocals(rows), (recip) =>
    launch(ctx, kernel, params, [recip, bind(ctx, kernel, stack, rows * numel * F32_BYTES)], grid(ctx, numel)),
  );
}

/**
 * TIES trim, sign election and disjoint merge in place in one pass (ties_merge): the same bits as trimMask with
 * `thresholdBits` followed by disjointMerge, on the untrimmed stack.
 */
export function tiesMerge(
  ctx: GpuContext,
  stack: GPUBuffer,
  rows: number,
  numel: number,
  thresholdBits: Uint32Array,
  merge: DisjointMerge,
  zeroSign: ZeroSignRule,
): void {
  const kernel = 'ties_merge';
  checkStack(kernel, rows, numel);
  checkPerRow(kernel, 'thresholdBits', thresholdBits, rows);
  const params = disjointParams(kernel, merge, zeroSign);
  bind(ctx, kernel, stack, rows * numel * F32_BYTES);
  if (numel === 0) return;
  const aligned = new QuadRows(ctx, kernel);
  try {
    const { buffer, quads } = aligned.of(stack, rows, numel);
    withTable(ctx, `${kernel} thresholds`, thresholdBits, (thresholds) =>
      withTable(ctx, `${kernel} reciprocals`, countReciprocals(rows), (recip) =>
        launch(ctx, kernel, [numel, quads, rows, ...params], [thresholds, recip, bind(ctx, kernel, buffer, rows * quads * 16)], grid(ctx, quads)),
      ),
    );
    aligned.writeBack(stack, rows, numel);
  } finally {
    aligned.destroy();
  }
}

/** MagMax in place: per column only the row of largest |x| keeps its value (a later row wins ties). */
export function magmaxSelect(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number): void {
  const kernel = 'magmax_select';
  checkStack(kernel, rows, numel);
  if (numel === 0) return;
  launch(ctx, kernel, [numel, rows], [bind(ctx, kernel, stack, rows * numel * F32_BYTES)], grid(ctx, Math.ceil(numel / THREAD_ELEMENTS)));
}

/**
 * TALL masks m_r = |tau_r| > lambdas[r] * |mtl - tau_r|: writes the number of tasks using each weight to
 * `out.counts` and, when `out.bitfield` is given (rows <= 32), the masks packed one bit per task.
 */
export function tallMask(
  ctx: GpuContext,
  tau: GPUBuffer,
  rows: number,
  numel: number,
  mtl: GPUBuffer,
  lambdas: Float32Array,
  out: TallMaskOutputs,
): void {
  const kernel = 'tall_mask';
  checkStack(kernel, rows, numel);
  checkPerRow(kernel, 'lambdas', lambdas, rows);
  if (out.bitfield && rows > BITFIELD_ROWS) {
    throw new GpuError('validation', `${kernel}: a mask bitfield holds at most ${BITFIELD_ROWS} tasks, got ${rows}`);
  }
  if (numel === 0) return;
  const fixed = [
    bind(ctx, kernel, tau, rows * numel * F32_BYTES),
    bind(ctx, kernel, mtl, numel * F32_BYTES),
    bind(ctx, kernel, out.counts, numel * 4),
  ];
  withTable(ctx, `${kernel} lambdas`, lambdas, (lams) => {
    const params = [numel, rows, out.bitfield ? 1 : 0];
    if (out.bitfield) {
      launch(ctx, kernel, params, [lams, ...fixed, bind(ctx, kernel, out.bitfield, numel * 4)], grid(ctx, numel));
    } else {
      // The binding must exist even when unused: a one-word placeholder.
      withTable(ctx, `${kernel} no bitfield`, new Uint32Array(1), (none) => launch(ctx, kernel, params, [lams, ...fixed, none], grid(ctx, numel)));
    }
  });
}

/** Consensus in place: zeroes column j of every row unless counts[j] >= k (counts: u32 [numel] from tallMask). */
export function countMask(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number, counts: GPUBuffer, k: number): void {
  const kernel = 'count_mask';
  checkStack(kernel, rows, numel);
  if (!Number.isInteger(k) || k < 0 || k > 2 ** 32 - 1) throw new GpuError('validation', `${kernel}: k must be a u32 integer, got ${k}`);
  if (numel === 0) return;
  const bindings = [bind(ctx, kernel, counts, numel * 4), bind(ctx, kernel, stack, rows * numel * F32_BYTES)];
  launch(ctx, kernel, [numel, rows, k], bindings, grid(ctx, numel));
}

/**
 * words[j] (u32 [numel]) = bit r set where row r of `stack` ([rows, numel] f32) holds anything but +0 at column j
 * (rows <= 32): the entries a merge's contributions keep.
 */
export function keepBits(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number, words: GPUBuffer): void {
  const kernel = 'keep_bits';
  checkStack(kernel, rows, numel);
  if (rows > BITFIELD_ROWS) throw new GpuError('validation', `${kernel}: at most ${BITFIELD_ROWS} rows, got ${rows}`);
  if (stack === words) throw new GpuError('validation', `${kernel}: words must be a different buffer from the stack '${stack.label}'`);
  if (numel === 0) return;
  launch(ctx, kernel, [numel, rows], [bind(ctx, kernel, stack, rows * numel * F32_BYTES), bind(ctx, kernel, words, numel * 4)], grid(ctx, numel));
}

/** One TALL model delta: out[j] = bit `bit` of bitfield[j] set ? src[j] : 0 (`out` must not be `src`). */
export function bitmaskApply(ctx: GpuContext, bitfield: GPUBuffer, bit: number, src: GPUBuffer, numel: number, out: GPUBuffer): void {
  const kernel = 'bitmask_apply';
  checkStack(kernel, 1, numel);
  if (!Number.isInteger(bit) || bit < 0 || bit >= BITFIELD_ROWS) throw new GpuError('validation', `${kernel}: bit must be an integer in 0..31, got ${bit}`);
  if (src === out) throw new GpuError('validation', `${kernel}: out must be a different buffer from src '${src.label}'`);
  if (numel === 0) return;
  const bindings = [bind(ctx, kernel, bitfield, numel * 4), bind(ctx, kernel, src, numel * F32_BYTES), bind(ctx, kernel, out, numel * F32_BYTES)];
  launch(ctx, kernel, [numel, bit], bindings, grid(ctx, numel));
}
