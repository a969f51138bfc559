/**
 * Thin SVD on the GPU, A = U diag(s) V^T for a batch of m x n f32 matrices (k = min(m, n), U [m, k], V [n, k]), by
 * block one-sided Jacobi (Hestenes). The float64 reference it is tested against is reference/svd.ts (svdThin).
 *
 * Algorithm. Work on the long side: the k vectors w_j of length L = max(m, n) (columns of a tall A, rows of a wide
 * A, scaled by 1 / ||A||_F), each with an accumulator acc_j (row j of the identity) in the same row of the working
 * matrix X, so that rotating whole rows [w_j, acc_j] keeps W = A^(T) Acc^T. The k rows are padded to nb blocks of
 * SVD_BLOCK = b rows (nb even; padding rows are zero and never rotate). A step pairs all blocks (round-robin
 * "circle" schedule, blockSchedule: the nb - 1 steps of a sweep meet every two blocks once, and the nb / 2 pairs of
 * a step are independent). Per step, three dispatches cover every pair of every matrix of the batch:
 *   svd_gram    G = Y Y^T for the pair's 2b vectors Y (barrier-free, a thread per 4 x 4 tile);
 *   svd_rotate  cyclic two-sided Jacobi on G in workgroup memory, accumulating Q (Q^T G Q tends to diagonal) and
 *               measuring convergence; svd_rotate_serial does the same with a thread per pair and no barriers,
 *               for CPU implementations (see GpuSvdOptions.innerOrder);
 *   svd_apply   the pair's 2b rows of X times Q, into the other of two X buffers.
 * At convergence the w_j are orthogonal: s_j = ||w_j|| ||A||_F, the normalised w_j are the long-side singular
 * vectors and the acc_j the short-side ones (svd_norms, then svd_gather in descending order).
 *
 * Convergence test: off = max over all pairs p < q of |w_p . w_q| / (||w_p|| ||w_q||), measured on the fresh Gram
 * matrix of each block pair at its step; a pair below tol = TOL_FACTOR * sqrt(L) * 2^-24 (the f32 rounding level
 * of a length-L dot product) is not rotated, and the SVD has converged after a sweep in which every pair was below
 * tol (that sweep changed nothing; it costs about one Gram pass). Vectors with squared norm <= ZERO_SQ count as zero
 * (never rotated). Measured sweeps, including that last one: 6-8 for tall random matrices (200 x 50, 768 x 192),
 * 11-12 for square ones (256 x 256, 384 x 384), where clusters of small singular values converge late.
 *
 * Zero singular values: after convergence, exactly-zero vectors (zero or rank-deficient input) get a tiny random
 * long side (shaders/svd_fill.wgsl) and the sweeps resume, which turns them into vectors orthogonal to all others;
 * their singular values are reported as 0. So U and V are always orthonormal.
 *
 * Cost per sweep, in multiply-adds: Gram ~1.1 k^2 L, rotation 2 k^2 (L + k), the 2b x 2b eigenproblems
 * ~(k / b)^2 / 2 * 5 (2b)^3 * inner sweeps; 3 (nb - 1) dispatches and one 4-byte-per-matrix readback per sweep.
 * For 768 x 768, ~2.3 G multiply-adds per sweep; batching matrices of one shape shares every dispatch.
 * Accuracy (f32): singular values to ~3e-7 of s_0, U and V orthonormal to ~tol, reconstruction ~1e-6.
 */
import { GpuError } from '../errors';
import { rngKey, stringId } from '../rng';
import { SVD_APPLY_ROWS, SVD_BLOCK, SVD_SERIAL_THREADS } from './constants';
import type { GpuContext } from './device';
import { itemGrid, workgroupGrid } from './dispatch';
import { readBuffer, sumSquares } from './kernels';
import { bind, f32Bits, launch } from './launch';

/** Options of svdGpu. */
export interface GpuSvdOptions {
  /** Number of m x n matrices stored one after another in the input (default 1). */
  batch?: number;
  /** Names the matrix in errors and buffer labels (default 'svd'). */
  label?: string;
  /** Sweep cap (default SVD_GPU_MAX_SWEEPS); hitting it returns converged = false. */
  maxSweeps?: number;
  /** Orthogonality tolerance (default svdGpuTolerance(max(m, n))). */
  tol?: number;
  /** Cap on the inner Jacobi sweeps per block pair and step (default 8 for k <= 2 * SVD_BLOCK, else 1). */
  maxInnerSweeps?: number;
  /**
   * How each block pair's rotations are computed: 'parallel' (svd_rotate: a workgroup per pair, rounds of disjoint
   * rotations with two barriers each; for GPUs) or 'serial' (svd_rotate_serial: a thread per pair, no barriers; for
   * CPU implementations, where a barrier costs tens of microseconds). Default: 'serial' on a software adapter.
   */
  innerOrder?: 'parallel' | 'serial';
}

/** Result of svdGpu. The caller owns u and v (free them with ctx.destroyBuffer). */
export interface GpuSvd {
  m: number;
  n: number;
  k: number;
  batch: number;
  /** Left singular vectors [batch, m, k], row-major: column i of matrix t is u_i. */
  u: GPUBuffer;
  /** Singular values [batch, k], descending per matrix. */
  s: Float64Array;
  /** Right singular vectors [batch, n, k], row-major. */
  v: GPUBuffer;
  /** Jacobi sweeps run (the last one found every pair orthogonal, when converged). */
  sweeps: number;
  converged: boolean;
  /**
   * Per matrix: the sweeps it would have taken alone (the first sweep that found all its pairs orthogonal, plus those
   * after its zero vectors were filled), and whether it converged. A matrix of a batch that converged before the others
   * rotates nothing in the later sweeps, so its factors are those of its own run.
   */
  sweepsEach: number[];
  convergedEach: boolean[];
}

/** Default sweep cap; random matrices need about 6-10 sweeps. */
export const SVD_GPU_MAX_SWEEPS = 40;
/** tol = TOL_FACTOR * sqrt(L) * 2^-24. */
const TOL_FACTOR = 2;
/** Squared norm (of the vectors scaled to ||A||_F = 1) below which a vector counts as zero. */
const ZERO_SQ = 1e-30;
/** Amplitude of the random entries svd_fill gives zero vectors: far below any f32-resolved singular value. */
const FILL_AMPLITUDE = 1e-12;
/**
 * Inner sweeps when the matrix is a single block pair (k <= 2 * SVD_BLOCK): the step is the whole problem, so it is
 * iterated close to convergence. With several pairs the default is 1: G changes at the next step anyway, and more
 * inner sweeps were measured to save no outer sweeps (384 x 384: 12 with 1, 3 or 8).
 */
const SINGLE_PAIR_INNER_SWEEPS = 8;
const PAIR = 2 * SVD_BLOCK;
/** 4 x 4 tiles in the upper triangle of a PAIR x PAIR Gram matrix (one svd_gram thread each). */
const GRAM_TILES = ((PAIR / 4) * (PAIR / 4 + 1)) / 2;
const F32_BYTES = 4;

/** The default orthogonality tolerance for vectors of length `len`: about the f32 rounding level of their dot product. */
export function svdGpuTolerance(len: number): number {
  return TOL_FACTOR * Math.sqrt(len) * 2 ** -24;
}

/**
 * The round-robin schedule of nb blocks (nb even): entry (step, pair) holds the two blocks of that pair, as
 * [nb - 1, nb / 2, 2] u32s. Block nb - 1 is fixed and the others turn, so every two blocks meet exactly once.
 */
export function blockSchedule(nb: number): Uint32Array {
  const ring = nb - 1;
  const pairs = nb / 2;
  const out = new Uint32Array(ring * pairs * 2);
  for (let step = 0; step < ring; step++) {
    for (let i = 0; i < pairs; i++) {
      const [a, b] = i === 0 ? [ring, step] : [(step + i) % ring, (step - i + ring) % ring];
      out.set([a, b], (step * pairs + i) * 2);
    }
  }
  return out;
}

/** Sizes of the working matrix X for an m x n input. */
interface Layout {
  m: number;
  n: number;
  k: number;
  batch: number;
  tall: boolean;
  /** Long side L and its padded length (a multiple of 4; the accumulator part starts there). */
  len: number;
  lenPad: number;
  /** Blocks (even, >= 2), rows (nb * SVD_BLOCK) and row length (a multiple of 4) of X. */
  nb: number;
  rows: number;
  stride: number;
}

function layoutOf(m: number, n: number, batch: number): Layout {
  const k = Math.min(m, n);
  const len = Math.max(m, n);
  const lenPad = Math.ceil(len / 4) * 4;
  let nb = Math.max(2, Math.ceil(k / SVD_BLOCK));
  nb += nb % 2;
  return { m, n, k, batch, tall: m >= n, len, lenPad, nb, rows: nb * SVD_BLOCK, stride: lenPad + Math.ceil(k / 4) * 4 };
}

/** GPU buffers of one SVD run. */
interface Work {
  x: [GPUBuffer, GPUBuffer];
  /** Which of x holds the current matrix. */
  cur: 0 | 1;
  sched: GPUBuffer;
  /** Gram matrix of each block pair at the current step: [batch, pairs, PAIR, PAIR]. */
  g: GPUBuffer;
  /** E = Q - I of each block pair at the current step: [batch, pairs, PAIR, PAIR]. */
  q: GPUBuffer;
  off: GPUBuffer;
  /** Per block pair: whether it rotated at this step. */
  moving: GPUBuffer;
}

const STORAGE = () => GPUBufferUsage.STORAGE;
const STORAGE_IO = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A new storage buffer holding `data` (arrays this module made, so their memory is a plain ArrayBuffer). */
function upload(ctx: GpuContext, label: string, data: Uint32Array | Float32Array): GPUBuffer {
  const buf = ctx.createBuffer(label, data.byteLength, STORAGE_IO());
  ctx.device.queue.writeBuffer(buf, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  return buf;
}

/** Iteration settings of one run. */
interface Settings {
  tol: number;
  maxSweeps: number;
  maxInner: number;
  serial: boolean;
}

/** Sweeps run: in all, and per matrix until the first that found all its pairs orthogonal (0: none did). */
interface SweepRun {
  sweeps: number;
  converged: boolean;
  each: Int32Array;
}

/** Runs sweeps until one finds every pair orthogonal (or the cap); returns the sweeps run. */
async function sweep(ctx: GpuContext, lay: Layout, w: Work, set: Settings): Promise<SweepRun> {
  const { tol, maxSweeps } = set;
  const pairs = lay.nb / 2;
  const xBytes = lay.batch * lay.rows * lay.stride * F32_BYTES;
  const maxDim = ctx.info.limits.maxComputeWorkgroupsPerDimension;
  const gramGrid = itemGrid(lay.batch * pairs * GRAM_TILES, maxDim);
  const rotateKernel = set.serial ? 'svd_rotate_serial' : 'svd_rotate';
  const rotateGrid = workgroupGrid(set.serial ? Math.ceil((lay.batch * pairs) / SVD_SERIAL_THREADS) : lay.batch * pairs, maxDim);
  // svd_apply: a thread per two vec4 columns of ROWS rows of a pair.
  const applyGrid = itemGrid(lay.batch * pairs * (PAIR / SVD_APPLY_ROWS) * Math.ceil(lay.stride / 8), maxDim);
  const schedBinding = bind(ctx, 'svd', w.sched, (lay.nb - 1) * pairs * 2 * 4);
  const rotateParams = [pairs, lay.batch, set.maxInner, f32Bits(tol), f32Bits(ZERO_SQ)];
  const rotateBindings = [{ buffer: w.g }, { buffer: w.q }, { buffer: w.off }, { buffer: w.moving }];
  const each = new Int32Array(lay.batch);
  for (let s = 1; s <= maxSweeps; s++) {
    ctx.device.queue.writeBuffer(w.off, 0, new Uint32Array(lay.batch));
    for (let step = 0; step < lay.nb - 1; step++) {
      const src = bind(ctx, 'svd_gram', w.x[w.cur], xBytes);
      const dst = bind(ctx, 'svd_apply', w.x[1 - w.cur]!, xBytes);
      launch(ctx, 'svd_gram', [lay.rows, lay.stride / 4, lay.lenPad / 4, lay.nb, step, lay.batch], [src, schedBinding, { buffer: w.g }], gramGrid);
      launch(ctx, rotateKernel, rotateParams, rotateBindings, rotateGrid);
      launch(ctx, 'svd_apply', [lay.rows, lay.stride / 4, lay.nb, step, lay.batch], [schedBinding, { buffer: w.q }, src, dst, { buffer: w.moving }], applyGrid);
      w.cur = w.cur === 0 ? 1 : 0;
    }
    const bits = await readBuffer(ctx, w.off, lay.batch * 4);
    const off = new Float32Array(bits.buffer, bits.byteOffset, lay.batch);
    off.forEach((x, t) => {
      if (x <= tol && each[t] === 0) each[t] = s;
    });
    if (each.every((x) => x > 0)) return { sweeps: s, converged: true, each };
  }
  return { sweeps: maxSweeps, converged: false, each };
}

/** Squared norms of the long-side part of every row of X, [batch, rows]. */
async function rowNorms(ctx: GpuContext, lay: Layout, x: GPUBuffer, label: string): Promise<Float32Array> {
  const count = lay.batch * lay.rows;
  const out = ctx.createBuffer(`${label} norms`, count * F32_BYTES, STORAGE_IO());
  try {
    const bindings = [bind(ctx, 'svd_norms', x, count * lay.stride * F32_BYTES), { buffer: out }];
    launch(ctx, 'svd_norms', [lay.rows, lay.stride / 4, lay.lenPad / 4, lay.batch], bindings, itemGrid(count, ctx.info.limits.maxComputeWorkgroupsPerDimension));
    const bytes = await readBuffer(ctx, out, count * F32_BYTES);
    return new Float32Array(bytes.buffer, bytes.byteOffset, count);
  } finally {
    ctx.destroyBuffer(out);
  }
}

/** Gives the flagged rows a tiny random long side (svd_fill). */
function fillRows(ctx: GpuContext, lay: Layout, x: GPUBuffer, flags: Uint32Array, label: string): void {
  const flagBuf = upload(ctx, `${label} fill flags`, flags);
  try {
    const params = [lay.len, lay.stride, lay.rows, lay.batch, rngKey(0, 0, stringId('svd fill')), f32Bits(FILL_AMPLITUDE)];
    const bindings = [{ buffer: flagBuf }, bind(ctx, 'svd_fill', x, lay.batch * lay.rows * lay.stride * F32_BYTES)];
    launch(ctx, 'svd_fill', params, bindings, itemGrid(lay.batch * lay.rows * lay.len, ctx.info.limits.maxComputeWorkgroupsPerDimension));
  } finally {
    ctx.destroyBuffer(flagBuf);
  }
}

/** Writes one factor: out[t][i][c] = X[t][perm[t][c]][first + i] * mult[t][c], [batch, len, k]. */
function gather(ctx: GpuContext, lay: Layout, x: GPUBuffer, perm: Uint32Array, mult: Float32Array, len: number, first: number, label: string): GPUBuffer {
  const count = lay.batch * len * lay.k;
  const out = ctx.createBuffer(label, count * F32_BYTES, STORAGE_IO());
  const scratch: GPUBuffer[] = [];
  try {
    const permBuf = upload(ctx, `${label} order`, perm);
    scratch.push(permBuf);
    const multBuf = upload(ctx, `${label} scale`, mult);
    scratch.push(multBuf);
    const bindings = [bind(ctx, 'svd_gather', x, lay.batch * lay.rows * lay.stride * F32_BYTES), { buffer: permBuf }, { buffer: multBuf }, { buffer: out }];
    launch(ctx, 'svd_gather', [len, lay.k, lay.stride, lay.rows, first, lay.batch], bindings, itemGrid(count, ctx.info.limits.maxComputeWorkgroupsPerDimension));
  } catch (e) {
    ctx.destroyBuffer(out);
    throw e;
  } finally {
    for (const b of scratch) ctx.destroyBuffer(b);
  }
  return out;
}

function checkArgs(a: GPUBuffer, m: number, n: number, batch: number, label: string): void {
  for (const [name, x] of [['m', m], ['n', n], ['batch', batch]] as const) {
    if (!Number.isInteger(x) || x < 1) throw new GpuError('validation', `${label}: ${name} must be a positive integer, got ${x}`);
  }
  if (a.size < batch * m * n * F32_BYTES) {
    throw new GpuError('validation', `${label}: buffer '${a.label}' has ${a.size} bytes, needs ${batch * m * n * F32_BYTES} for ${batch} ${m}x${n} f32 matrices`);
  }
}

/**
 * GPU bytes svdGpu holds per m x n matrix of a batch: the working matrix twice, the Gram and rotation blocks, U and V
 * (the input is the caller's), and the largest single binding of one matrix (X), for sizing batches.
 */
export function svdBytesPerMatrix(m: number, n: number): { total: number; largestBinding: number } {
  const lay = layoutOf(m, n, 1);
  const x = lay.rows * lay.stride * F32_BYTES;
  const blocks = 2 * (lay.nb / 2) * PAIR * PAIR * F32_BYTES;
  return { total: 2 * x + blocks + (m + n) * lay.k * F32_BYTES, largestBinding: Math.max(x, Math.max(m, n) * lay.k * F32_BYTES) };
}

/**
 * Multiply-adds of svdGpu on one m x n matrix that took `sweeps` sweeps (default inner sweeps), counted from its
 * dispatches as if every block pair rotated at every step. Pairs already orthogonal skip their rotations and copy their
 * rows, so this is an upper bound; the last sweep, which finds every pair orthogonal, counts in full too. Per step and
 * block pair: svd_gram's 4 x 4 tiles of the upper triangle over the long side; svd_apply's PAIR x PAIR product over
 * whole rows; svd_rotate's PAIR (PAIR - 1) / 2 rotations per inner sweep, each about 12 PAIR multiply-adds (two rows
 * and two columns of G, two columns of E). The setup and the final norms and gather are left out.
 */
export function svdMultiplyAdds(m: number, n: number, sweeps: number): number {
  const lay = layoutOf(m, n, 1);
  const inner = lay.nb === 2 ? SINGLE_PAIR_INNER_SWEEPS : 1;
  const perPair = GRAM_TILES * 16 * lay.lenPad + PAIR * PAIR * lay.stride + inner * ((PAIR * (PAIR - 1)) / 2) * 12 * PAIR;
  return sweeps * (lay.nb - 1) * (lay.nb / 2) * perPair;
}

/**
 * Thin SVD of each m x n f32 matrix in `a` ([batch, m, n], row-major): U [batch, m, k], s descending, V [batch, n, k].
 * Throws GpuError naming `label` if a matrix contains NaN or Infinity.
 */
export async function svdGpu(ctx: GpuContext, a: GPUBuffer, m: number, n: number, opts: GpuSvdOptions = {}): Promise<GpuSvd> {
  const batch = opts.batch ?? 1;
  const label = opts.label ?? 'svd';
  checkArgs(a, m, n, batch, label);
  const lay = layoutOf(m, n, batch);
  const set: Settings = {
    tol: opts.tol ?? svdGpuTolerance(lay.len),
    maxSweeps: opts.maxSweeps ?? SVD_GPU_MAX_SWEEPS,
    maxInner: opts.maxInnerSweeps ?? (lay.nb === 2 ? SINGLE_PAIR_INNER_SWEEPS : 1),
    serial: (opts.innerOrder ?? (ctx.info.isSoftware ? 'serial' : 'parallel')) === 'serial',
  };

  const frobSq = await sumSquares(ctx, a, batch, m * n);
  const bad = frobSq.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new GpuError('validation', `${label}: matrix ${bad} of the batch contains NaN or Infinity`);
  const frob = Array.from(frobSq, Math.sqrt);

  const xBytes = batch * lay.rows * lay.stride * F32_BYTES;
  const pairs = lay.nb / 2;
  // Made one by one so that an allocation that does not fit frees the ones made before it.
  const made: GPUBuffer[] = [];
  const make = (buf: () => GPUBuffer) => {
    const b = buf();
    made.push(b);
    return b;
  };
  let w: Work;
  try {
    w = {
      x: [make(() => ctx.createBuffer(`${label} X0`, xBytes, STORAGE())), make(() => ctx.createBuffer(`${label} X1`, xBytes, STORAGE()))],
      cur: 0,
      sched: make(() => upload(ctx, `${label} schedule`, blockSchedule(lay.nb))),
      g: make(() => ctx.createBuffer(`${label} Gram matrices`, batch * pairs * PAIR * PAIR * F32_BYTES, STORAGE())),
      q: make(() => ctx.createBuffer(`${label} rotations`, batch * pairs * PAIR * PAIR * F32_BYTES, STORAGE())),
      off: make(() => ctx.createBuffer(`${label} off-diagonal`, batch * 4, STORAGE_IO())),
      moving: make(() => ctx.createBuffer(`${label} moving pairs`, batch * pairs * 4, STORAGE())),
    };
  } catch (e) {
    for (const b of made) ctx.destroyBuffer(b);
    throw e;
  }
  try {
    const scale = upload(ctx, `${label} scale`, Float32Array.from(frob, (f) => (f > 0 ? 1 / f : 1)));
    try {
      const bindings = [bind(ctx, 'svd_init', a, batch * m * n * F32_BYTES), { buffer: scale }, { buffer: w.x[0] }];
      const params = [m, n, lay.k, lay.len, lay.lenPad, lay.stride, lay.rows, batch, lay.tall ? 1 : 0];
      launch(ctx, 'svd_init', params, bindings, itemGrid(batch * lay.rows * lay.stride, ctx.info.limits.maxComputeWorkgroupsPerDimension));
    } finally {
      ctx.destroyBuffer(scale);
    }

    const run = await sweep(ctx, lay, w, set);
    // A matrix that never converged counts the whole run.
    const sweepsEach = Array.from(run.each, (x) => x || run.sweeps);
    const convergedEach = Array.from(run.each, (x) => x > 0);
    let norms = await rowNorms(ctx, lay, w.x[w.cur], label);
    // Zero vectors (j < k; padding rows stay zero) get a random direction, then the sweeps resume.
    const filled = new Uint32Array(batch * lay.rows);
    const hasFill = new Array<boolean>(batch).fill(false);
    for (let t = 0; t < batch; t++) {
      for (let j = 0; j < lay.k; j++) {
        if (norms[t * lay.rows + j]! <= ZERO_SQ) {
          filled[t * lay.rows + j] = 1;
          hasFill[t] = true;
        }
      }
    }
    if (hasFill.some((f) => f)) {
      fillRows(ctx, lay, w.x[w.cur], filled, label);
      const more = await sweep(ctx, lay, w, set);
      run.sweeps += more.sweeps;
      run.converged &&= more.converged;
      // Only the matrices with filled vectors would have run these sweeps alone.
      for (let t = 0; t < batch; t++) {
        if (!hasFill[t]) continue;
        sweepsEach[t]! += more.each[t] || more.sweeps;
        convergedEach[t] &&= more.each[t]! > 0;
      }
      norms = await rowNorms(ctx, lay, w.x[w.cur], label);
    }

    const { s, perm, mult } = orderSingularValues(lay, norms, filled, frob);
    const x = w.x[w.cur];
    const longSide = gather(ctx, lay, x, perm, mult, lay.len, 0, lay.tall ? `${label} U` : `${label} V`);
    const shortSide = gather(ctx, lay, x, perm, new Float32Array(batch * lay.k).fill(1), lay.k, lay.lenPad, lay.tall ? `${label} V` : `${label} U`);
    const [u, v] = lay.tall ? [longSide, shortSide] : [shortSide, longSide];
    return { m, n, k: lay.k, batch, u, s, v, sweeps: run.sweeps, converged: run.converged, sweepsEach, convergedEach };
  } finally {
    for (const buf of [...w.x, w.sched, w.g, w.q, w.off, w.moving]) ctx.destroyBuffer(buf);
  }
}

/**
 * Singular values from the final squared row norms (0 for filled zero vectors), the rows in descending order (ties:
 * larger norm, then lower row) and the factors that normalise the long side.
 */
function orderSingularValues(lay: Layout, norms: Float32Array, filled: Uint32Array, frob: number[]): { s: Float64Array; perm: Uint32Array; mult: Float32Array } {
  const { k, rows, batch } = lay;
  const s = new Float64Array(batch * k);
  const perm = new Uint32Array(batch * k);
  const mult = new Float32Array(batch * k);
  for (let t = 0; t < batch; t++) {
    const nrm = (j: number) => Math.sqrt(norms[t * rows + j]!);
    const sv = (j: number) => (filled[t * rows + j] ? 0 : nrm(j) * frob[t]!);
    const order = Array.from({ length: k }, (_, j) => j).sort((p, q) => sv(q) - sv(p) || nrm(q) - nrm(p) || p - q);
    order.forEach((j, c) => {
      s[t * k + c] = sv(j);
      perm[t * k + c] = j;
      mult[t * k + c] = nrm(j) > 0 ? 1 / nrm(j) : 0;
    });
  }
  return { s, perm, mult };
}
