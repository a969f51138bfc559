/**
 * Launchers for the merge reductions: sign_sum (the TIES majority-sign pre-pass), row_stats, gram (and gram_raw, from
 * the raw model bytes), sign_stats,
 * topk_energy and usage_histogram. row_stats, gram, sign_stats and topk_energy give each thread a block of
 * REDUCTION_BLOCK columns, which it adds in order into a few partials, with no workgroup barriers (trees of barriers
 * ran several times slower on a CPU-emulated device); sign_sum and usage_histogram reduce one chunk of REDUCTION_CHUNK
 * columns per workgroup. Only the partials (f32 sums in a fixed order, u32/i32 counts) are read back, and the host
 * adds them in float64 with the pure `*FromPartials` functions below, which the CPU twins
 * (src/engine/reference/mergeReductions.ts) share.
 * Callers add results over chunks and tensors themselves. SignTally (trimmed_sign_sum) instead accumulates on the GPU
 * over a whole pass and is read back once.
 */
import { GpuError } from '../errors';
import { DTYPE_CODE, HISTOGRAM_MAX_BINS, reductionBlocks, TOPK_MAX_LEVELS, WORKGROUP_SIZE } from './constants';
import type { GpuContext } from './device';
import { workgroupGrid } from './dispatch';
import { checkCount, readBuffer, specialisedPipeline, StagingReader, type RawSegment } from './kernels';
import { rawBlockLayout } from './linearMerge';
import { bind, launch } from './launch';
import { checkStack, countReciprocals, QuadRows, withQuadRows, withTable } from './mergeKernels';

/** Columns each workgroup of sign_sum and usage_histogram covers: 16 per thread keeps the readback small. */
export const REDUCTION_CHUNK = WORKGROUP_SIZE * 16;

/** Statistics of one row. */
export interface RowStats {
  /** Sum of x^2 (its square root is the L2 norm). */
  sumSquares: number;
  /** Sum of |x|. */
  sumAbs: number;
  /** Entries that are not +-0 (NaN counts): kept fraction = nonZero / numel. */
  nonZero: number;
  /** Infinite or NaN entries. */
  nonFinite: number;
}

/** Sign statistics over the columns of a stack (metrics.ts SignStats before dividing by `columns`). */
export interface SignStatsCounts {
  columns: number;
  /** Columns where one row is positive and another negative. */
  conflicts: number;
  /** Columns with at least two signed (non-zero, non-NaN) entries. */
  multi: number;
  /** Sum over columns of |#pos - #neg| / (#pos + #neg), 1 for a column with no signed entry. */
  agreementSum: number;
}

const F32_BYTES = 4;
const ROW_STATS_WORDS = 4;
const SIGN_STATS_WORDS = 3;

/** Workgroups of WORKGROUP_SIZE threads for `threads` threads. */
const threadGroups = (threads: number) => Math.ceil(threads / WORKGROUP_SIZE);

/** Number of REDUCTION_CHUNK chunks covering `numel` columns (the workgroup-per-chunk reductions). */
export function reductionChunks(numel: number): number {
  return Math.ceil(numel / REDUCTION_CHUNK);
}

/** Number of pairs a <= b of `rows` rows (the upper triangle of a Gram matrix). */
export function gramPairs(rows: number): number {
  return (rows * (rows + 1)) / 2;
}

/** Sum of the i32 partials of sign_sum. */
export function signSumFromPartials(partials: Int32Array): number {
  return partials.reduce((s, x) => s + x, 0);
}

/** Row statistics from row_stats partials [rows, blocks, 4]. */
export function rowStatsFromPartials(partials: Uint32Array, rows: number, chunks: number): RowStats[] {
  const floats = new Float32Array(partials.buffer, partials.byteOffset, partials.length);
  return Array.from({ length: rows }, (_, r) => {
    const s: RowStats = { sumSquares: 0, sumAbs: 0, nonZero: 0, nonFinite: 0 };
    for (let c = 0; c < chunks; c++) {
      const at = (r * chunks + c) * ROW_STATS_WORDS;
      s.sumSquares += floats[at]!;
      s.sumAbs += floats[at + 1]!;
      s.nonZero += partials[at + 2]!;
      s.nonFinite += partials[at + 3]!;
    }
    return s;
  });
}

/** The symmetric [rows, rows] Gram matrix (row-major) from gram partials [pairs, blocks]. */
export function gramFromPartials(partials: Float32Array, rows: number, chunks: number, from = 0, to = chunks): Float64Array {
  const out = new Float64Array(rows * rows);
  addGramPartials(out, partials, rows, chunks, from, to);
  return out;
}

/**
 * Adds gram partials [pairs, chunks] over chunks [from, to), in that order, to the [rows, rows] matrix `out` (both
 * triangles). Adding a tensor's chunks this way one after another gives the same float64 sums however the tensor was
 * split, as long as every split falls on a REDUCTION_BLOCK boundary.
 */
export function addGramPartials(out: Float64Array, partials: Float32Array, rows: number, chunks: number, from = 0, to = chunks): void {
  let p = 0;
  for (let a = 0; a < rows; a++) {
    for (let b = a; b < rows; b++, p++) {
      let sum = out[a * rows + b]!;
      for (let c = from; c < to; c++) sum += partials[p * chunks + c]!;
      out[a * rows + b] = sum;
      out[b * rows + a] = sum;
    }
  }
}

/** Sign statistics from sign_stats partials [blocks, 3]. */
export function signStatsFromPartials(partials: Uint32Array, columns: number): SignStatsCounts {
  const floats = new Float32Array(partials.buffer, partials.byteOffset, partials.length);
  const s: SignStatsCounts = { columns, conflicts: 0, multi: 0, agreementSum: 0 };
  for (let at = 0; at < partials.length; at += SIGN_STATS_WORDS) {
    s.conflicts += partials[at]!;
    s.multi += partials[at + 1]!;
    s.agreementSum += floats[at + 2]!;
  }
  return s;
}

/** A reduction kernel launched into its own partials buffer, not yet read back. */
interface Launched {
  buffer: GPUBuffer;
  words: number;
}

/** Launches a reduction kernel whose partials are `words` u32 values written to a fresh buffer bound last. */
function launchReduction(ctx: GpuContext, kernel: string, params: number[], inputs: GPUBufferBinding[], words: number, workgroups: number, constants?: Record<string, number>): Launched {
  const buffer = ctx.createBuffer(`${kernel} partials`, words * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  try {
    const grid = workgroupGrid(workgroups, ctx.info.limits.maxComputeWorkgroupsPerDimension);
    launch(ctx, kernel, params, [...inputs, { buffer }], grid, constants ? { pipeline: specialisedPipeline(ctx, kernel, constants) } : {});
  } catch (e) {
    ctx.destroyBuffer(buffer);
    throw e;
  }
  return { buffer, words };
}

/** Reads the partials of launched reductions back in one staging copy (one wait for all), and frees their buffers. */
async function readReductions(ctx: GpuContext, launched: readonly Launched[]): Promise<Uint32Array[]> {
  const reader = new StagingReader(ctx, 'reduction partials');
  try {
    const read = reader.start(ctx.device.createCommandEncoder({ label: 'reduction partials' }), launched.map((l) => ({ buffer: l.buffer, bytes: l.words * 4 })));
    return (await read()).map((b, i) => new Uint32Array(b.buffer, b.byteOffset, launched[i]!.words));
  } finally {
    reader.destroy();
    for (const l of launched) ctx.destroyBuffer(l.buffer);
  }
}

/** Runs one reduction kernel (see launchReduction; `constants`: its pipeline constants) and reads its partials back. */
async function reduce(ctx: GpuContext, kernel: string, params: number[], inputs: GPUBufferBinding[], words: number, workgroups: number, constants?: Record<string, number>): Promise<Uint32Array> {
  return (await readReductions(ctx, [launchReduction(ctx, kernel, params, inputs, words, workgroups, constants)]))[0]!;
}

/**
 * sum_j sign(sum_r x[r, j]) over the chunk's columns (f32 column sums in row order; a NaN sum counts 0): the
 * caller adds it over every chunk of every tensor and takes the sign as TIES's global majority sign.
 */
export async function signSum(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number): Promise<number> {
  const kernel = 'sign_sum';
  checkStack(kernel, rows, numel);
  if (numel === 0) return 0;
  const chunks = reductionChunks(numel);
  const words = await reduce(ctx, kernel, [numel, rows, chunks, REDUCTION_CHUNK], [bind(ctx, kernel, stack, rows * numel * F32_BYTES)], chunks, chunks);
  return signSumFromPartials(new Int32Array(words.buffer, words.byteOffset, words.length));
}

/**
 * The TIES majority-sign pass over many chunks: add(chunk) counts, per column, the sign of the f32 column sum of the
 * chunk's stack as trim_mask would leave it (without changing the stack), into a GPU accumulator; total() reads it
 * back once and returns sum_j sign(s_j), i.e. signSum(trimMask(stack)) added over every chunk.
 */
export class SignTally {
  private static readonly kernel = 'trimmed_sign_sum';
  /** Column quads per thread (two atomic adds per thread; 1 measured fastest on SwiftShader). */
  private static readonly PER_THREAD = 1;
  private readonly acc: GPUBuffer;
  private readonly thresholds: GPUBuffer;
  private readonly rows: number;
  private readonly quadRows: QuadRows;

  /** thresholdBits: one magnitude bit pattern per row (0 keeps the row). */
  constructor(
    private readonly ctx: GpuContext,
    thresholdBits: Uint32Array,
  ) {
    const kernel = SignTally.kernel;
    checkStack(kernel, thresholdBits.length, 0);
    this.rows = thresholdBits.length;
    this.acc = ctx.createBuffer(`${kernel} counts`, 16, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    try {
      this.thresholds = ctx.createBuffer(`${kernel} thresholds`, thresholdBits.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    } catch (e) {
      ctx.destroyBuffer(this.acc);
      throw e;
    }
    ctx.device.queue.writeBuffer(this.thresholds, 0, Uint32Array.from(thresholdBits));
    ctx.device.queue.writeBuffer(this.acc, 0, new Uint32Array(4));
    this.quadRows = new QuadRows(ctx, kernel);
  }

  /** Counts the columns of `stack` ([rows, numel] f32, untrimmed; read only). */
  add(stack: GPUBuffer, rows: number, numel: number): void {
    const kernel = SignTally.kernel;
    checkStack(kernel, rows, numel);
    if (rows !== this.rows) throw new GpuError('validation', `${kernel}: stack has ${rows} rows, the thresholds ${this.rows}`);
    if (numel === 0) return;
    bind(this.ctx, kernel, stack, rows * numel * F32_BYTES);
    const { buffer, quads } = this.quadRows.of(stack, rows, numel);
    const per = SignTally.PER_THREAD;
    const grid = workgroupGrid(Math.ceil(quads / (WORKGROUP_SIZE * per)), this.ctx.info.limits.maxComputeWorkgroupsPerDimension);
    const bindings = [bind(this.ctx, kernel, this.thresholds, rows * 4), bind(this.ctx, kernel, buffer, rows * quads * 16), { buffer: this.acc }];
    launch(this.ctx, kernel, [numel, quads, rows, per], bindings, grid);
  }

  /** Columns with a positive sum minus columns with a negative sum, over everything added. */
  async total(): Promise<number> {
    const bytes = await readBuffer(this.ctx, this.acc, 16);
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, 4);
    return w[0]! + w[1]! * 2 ** 32 - (w[2]! + w[3]! * 2 ** 32);
  }

  destroy(): void {
    this.ctx.destroyBuffer(this.acc);
    this.ctx.destroyBuffer(this.thresholds);
    this.quadRows.destroy();
  }
}

/** A stack's rows as whole vec4s, `quads` per row (withQuadRows: the stack itself, or its aligned copy). */
interface QuadStack {
  buffer: GPUBuffer;
  quads: number;
}

/**
 * Launches reductions over one non-empty stack on its rows as whole vec4s: one aligned copy at most (where numel % 4
 * != 0), shared by every launcher and freed once they have submitted. On a failure the launched partials are freed.
 */
function launchOnQuads(ctx: GpuContext, kernel: string, stack: GPUBuffer, rows: number, numel: number, launchers: ((s: QuadStack) => Launched)[]): Launched[] {
  return withQuadRows(ctx, kernel, stack, rows, numel, (buffer, quads) => {
    const launched: Launched[] = [];
    try {
      for (const f of launchers) launched.push(f({ buffer, quads }));
    } catch (e) {
      for (const l of launched) ctx.destroyBuffer(l.buffer);
      throw e;
    }
    return launched;
  });
}

/** row_stats over a non-empty stack's quad rows, launched. */
function launchRowStats(ctx: GpuContext, s: QuadStack, rows: number, numel: number): Launched {
  const blocks = reductionBlocks(numel);
  const threads = rows * blocks;
  return launchReduction(ctx, 'row_stats', [numel, rows, blocks, 0, s.quads], [bind(ctx, 'row_stats', s.buffer, rows * s.quads * 16)], threads * ROW_STATS_WORDS, threadGroups(threads));
}

/** Per-row sum of squares, sum of magnitudes, non-zero and non-finite counts of a [rows, numel] buffer. */
export async function rowStats(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number): Promise<RowStats[]> {
  checkStack('row_stats', rows, numel);
  if (numel === 0) return rowStatsFromPartials(new Uint32Array(0), rows, 0);
  const [partials] = await readReductions(ctx, launchOnQuads(ctx, 'row_stats', stack, rows, numel, [(s) => launchRowStats(ctx, s, rows, numel)]));
  return rowStatsFromPartials(partials!, rows, reductionBlocks(numel));
}

/**
 * Per row and trim level, the sum of squares of the entries whose magnitude bits reach the level's threshold
 * (`thresholds` [rows, levels], 0 keeps every entry): [rows, levels] float64, from one topk_energy pass.
 */
export async function topkEnergy(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number, thresholds: Uint32Array): Promise<Float64Array> {
  const kernel = 'topk_energy';
  checkStack(kernel, rows, numel);
  const levels = rows > 0 ? thresholds.length / rows : 0;
  if (!Number.isInteger(levels) || levels < 1 || levels > TOPK_MAX_LEVELS) {
    throw new GpuError('validation', `${kernel}: needs 1..${TOPK_MAX_LEVELS} thresholds per row, got ${thresholds.length} for ${rows} rows`);
  }
  if (numel === 0) return new Float64Array(rows * levels);
  const blocks = reductionBlocks(numel);
  const threads = rows * blocks;
  const words = await withQuadRows(ctx, kernel, stack, rows, numel, (buffer, quads) =>
    withTable(ctx, `${kernel} thresholds`, thresholds, (table) =>
      reduce(ctx, kernel, [numel, rows, blocks, 0, levels, quads], [bind(ctx, kernel, buffer, rows * quads * 16), table], threads * levels, threadGroups(threads), { LEVELS: levels }),
    ),
  );
  return topkEnergyFromPartials(new Float32Array(words.buffer, words.byteOffset, words.length), rows, blocks, levels);
}

/** [rows, levels] float64 sums from topk_energy partials [rows, blocks, levels], added in block order. */
export function topkEnergyFromPartials(partials: Float32Array, rows: number, blocks: number, levels: number): Float64Array {
  const out = new Float64Array(rows * levels);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      for (let l = 0; l < levels; l++) out[r * levels + l] = out[r * levels + l]! + partials[(r * blocks + b) * levels + l]!;
    }
  }
  return out;
}

/** gram over a non-empty stack's quad rows, launched. */
function launchGram(ctx: GpuContext, s: QuadStack, rows: number, numel: number): Launched {
  const blocks = reductionBlocks(numel);
  // Tiles of 2 x 2 rows over the upper triangle (see gram.wgsl).
  const tiles = gramPairs(Math.ceil(rows / 2));
  return launchReduction(ctx, 'gram', [numel, rows, blocks, tiles, 0, s.quads], [bind(ctx, 'gram', s.buffer, rows * s.quads * 16)], gramPairs(rows) * blocks, threadGroups(tiles * blocks));
}

/** The [rows, rows] matrix (row-major, float64) of dot products between the rows of a [rows, numel] buffer. */
export async function gram(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number): Promise<Float64Array> {
  return gramFromPartials(await gramPartials(ctx, stack, rows, numel), rows, reductionBlocks(numel));
}

/** gram's partials [pairs, reductionBlocks(numel)] (f32, one per pair and block), for addGramPartials. */
export async function gramPartials(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number): Promise<Float32Array> {
  checkStack('gram', rows, numel);
  if (numel === 0) return new Float32Array(0);
  const [words] = await readReductions(ctx, launchOnQuads(ctx, 'gram', stack, rows, numel, [(s) => launchGram(ctx, s, rows, numel)]));
  return new Float32Array(words!.buffer, words!.byteOffset, words!.length);
}

/**
 * gram_raw: gram's partials straight from a chunk's raw inputs (RawUploader's segments: theta0, then the models in
 * one dtype, evenly spaced, zero-padded to whole blocks of 16): the rows are the task vectors, and with `thetaRow`
 * theta0 as one more row; bit for bit gramPartials over decode_stack's rows. [pairs, reductionBlocks(numel)] f32.
 */
export async function gramRawPartials(ctx: GpuContext, raw: { buffer: GPUBuffer; segments: readonly RawSegment[] }, numel: number, thetaRow: boolean): Promise<Float32Array> {
  const kernel = 'gram_raw';
  const tasks = raw.segments.length - 1;
  const rows = tasks + (thetaRow ? 1 : 0);
  const layout = rawBlockLayout(kernel, raw.segments, numel);
  checkCount(kernel, 'numel', numel);
  if (numel === 0) return new Float32Array(0);
  const blocks = reductionBlocks(numel);
  const tiles = gramPairs(Math.ceil(rows / 2));
  const constants = { BASE_DTYPE: DTYPE_CODE[raw.segments[0]!.dtype], MODEL_DTYPE: DTYPE_CODE[layout.model], THETA_ROW: thetaRow ? 1 : 0 };
  const launched = launchReduction(ctx, kernel, [numel, rows, blocks, tiles, 0, layout.firstVec4, layout.strideVec4, tasks], [bind(ctx, kernel, raw.buffer, layout.bytes)], gramPairs(rows) * blocks, threadGroups(tiles * blocks), constants);
  const [words] = await readReductions(ctx, [launched]);
  return new Float32Array(words!.buffer, words!.byteOffset, words!.length);
}

/**
 * One Gram matrix per column range of a [rows, numel] buffer, from one gram launch: range i covers the elements of
 * REDUCTION_BLOCK blocks [from, to) (several small tensors laid out on whole blocks, zero-padded). Each equals `gram` of
 * that range alone, whose last block holds the same values followed by the padding's +0 products.
 */
export async function gramRanges(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number, ranges: readonly { from: number; to: number }[]): Promise<Float64Array[]> {
  checkStack('gram', rows, numel);
  return rangeGrams('gram', rows, numel, ranges, () => gramPartials(ctx, stack, rows, numel));
}

/** gramRanges from a chunk's raw inputs (gram_raw's rows: the task vectors, then theta0 with `thetaRow`). */
export async function gramRawRanges(ctx: GpuContext, raw: { buffer: GPUBuffer; segments: readonly RawSegment[] }, numel: number, thetaRow: boolean, ranges: readonly { from: number; to: number }[]): Promise<Float64Array[]> {
  return rangeGrams('gram_raw', raw.segments.length - 1 + (thetaRow ? 1 : 0), numel, ranges, () => gramRawPartials(ctx, raw, numel, thetaRow));
}

/** Checks the block ranges, then one Gram per range from the partials `launch` reads back (none for 0 elements). */
async function rangeGrams(kernel: string, rows: number, numel: number, ranges: readonly { from: number; to: number }[], launch: () => Promise<Float32Array>): Promise<Float64Array[]> {
  const blocks = reductionBlocks(numel);
  for (const r of ranges) {
    if (!(Number.isInteger(r.from) && Number.isInteger(r.to) && 0 <= r.from && r.from <= r.to && r.to <= blocks)) {
      throw new GpuError('validation', `${kernel}: block range [${r.from}, ${r.to}) outside the ${blocks} blocks of ${numel} elements`);
    }
  }
  if (numel === 0) return ranges.map(() => new Float64Array(rows * rows));
  const partials = await launch();
  return ranges.map((r) => gramFromPartials(partials, rows, blocks, r.from, r.to));
}

/** sign_stats over a non-empty stack's quad rows, launched. */
function launchSignStats(ctx: GpuContext, s: QuadStack, rows: number, numel: number): Launched {
  const kernel = 'sign_stats';
  const blocks = reductionBlocks(numel);
  // withTable frees the table once the kernel that reads it is submitted.
  return withTable(ctx, `${kernel} reciprocals`, countReciprocals(rows), (recip) =>
    launchReduction(ctx, kernel, [numel, rows, blocks, 0, s.quads], [recip, bind(ctx, kernel, s.buffer, rows * s.quads * 16)], blocks * SIGN_STATS_WORDS, threadGroups(blocks)),
  );
}

/** Sign conflicts, multi-signed columns and the summed TIES sign agreement ratio over the stack's columns. */
export async function signStats(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number): Promise<SignStatsCounts> {
  checkStack('sign_stats', rows, numel);
  if (numel === 0) return signStatsFromPartials(new Uint32Array(0), 0);
  const [partials] = await readReductions(ctx, launchOnQuads(ctx, 'sign_stats', stack, rows, numel, [(s) => launchSignStats(ctx, s, rows, numel)]));
  return signStatsFromPartials(partials!, numel);
}

/**
 * gram, rowStats and signStats of one stack, with one readback for the three (the interference metrics of a chunk)
 * and at most one aligned copy of its rows for the three.
 */
export async function stackStats(ctx: GpuContext, stack: GPUBuffer, rows: number, numel: number): Promise<{ gram: Float64Array; rows: RowStats[]; signs: SignStatsCounts }> {
  for (const kernel of ['gram', 'row_stats', 'sign_stats']) checkStack(kernel, rows, numel);
  if (numel === 0) return { gram: await gram(ctx, stack, rows, 0), rows: await rowStats(ctx, stack, rows, 0), signs: await signStats(ctx, stack, rows, 0) };
  const launchers = [launchGram, launchRowStats, launchSignStats].map((f) => (s: QuadStack) => f(ctx, s, rows, numel));
  const [g, r, sg] = await readReductions(ctx, launchOnQuads(ctx, 'stackStats', stack, rows, numel, launchers));
  return { gram: gramFromPartials(new Float32Array(g!.buffer, g!.byteOffset, g!.length), rows, reductionBlocks(numel)), rows: rowStatsFromPartials(r!, rows, reductionBlocks(numel)), signs: signStatsFromPartials(sg!, numel) };
}

/**
 * Histogram of usage counts (u32 [numel], each 0..tasks, from tallMask): result[c] = number of weights used by
 * exactly c tasks, c = 0..tasks. A count above `tasks` is an error.
 */
export async function usageHistogram(ctx: GpuContext, counts: GPUBuffer, numel: number, tasks: number): Promise<number[]> {
  const kernel = 'usage_histogram';
  checkStack(kernel, tasks, numel, 'tasks');
  const bins = tasks + 1;
  if (bins + 1 > HISTOGRAM_MAX_BINS) throw new GpuError('validation', `${kernel}: at most ${HISTOGRAM_MAX_BINS - 2} tasks, got ${tasks}`);
  if (numel === 0) return new Array<number>(bins).fill(0);
  const chunks = reductionChunks(numel);
  const hist = await reduce(ctx, kernel, [numel, bins, REDUCTION_CHUNK, chunks], [bind(ctx, kernel, counts, numel * 4)], bins + 1, chunks);
  if (hist[bins] !== 0) {
    throw new GpuError('validation', `${kernel}: ${hist[bins]} counts in '${counts.label}' exceed the ${tasks} tasks`);
  }
  return Array.from(hist.subarray(0, bins));
}
