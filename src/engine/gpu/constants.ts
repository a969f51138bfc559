/**
 * Constants shared by host code and WGSL. This is their one source of truth: `wgslConstants()` turns them into
 * `const` declarations that the shader loader puts in front of every kernel, so no shader restates a number.
 */

/** Threads per workgroup of every 1-D elementwise kernel. */
export const WORKGROUP_SIZE = 256;

/** Codes for the element encodings a kernel reads or writes (uniform field `dtype`). */
export const DTYPE_CODE = { F32: 0, F16: 1, BF16: 2 } as const;
export type DTypeCode = (typeof DTYPE_CODE)[keyof typeof DTYPE_CODE];

/** Bins of usage_histogram's workgroup-memory histogram (4 KiB): at most HISTOGRAM_MAX_BINS - 2 tasks. */
export const HISTOGRAM_MAX_BINS = 1024;

/** Counters (and list regions) per list of ties_scan: threads append to counter thread % TIES_SCAN_SHARDS. */
export const TIES_SCAN_SHARDS = 64;

/**
 * Most models the fused output kernels take (linear_merge, magmax_output, ties_output): their uniform arrays of
 * coefficients (and RNG keys) hold LINEAR_MAX_TASKS / 4 vec4s (MAX_COEFF_VEC4S in WGSL).
 */
export const LINEAR_MAX_TASKS = 1024;

/**
 * Most tensors one launch of linear_merge with DARE's drop covers (small tensors sharing a chunk): its uniform holds
 * one record per tensor (first thread, first element, tensor id) in MAX_DROP_PARTS vec4s.
 */
export const MAX_DROP_PARTS = 64;

/** Trim levels one topk_energy pass sums at most. */
export const TOPK_MAX_LEVELS = 16;

/** Consecutive elements (columns) one thread of combine, pack_add and magmax_select handles. */
export const THREAD_ELEMENTS = 4;

/** Consecutive elements one thread of a reduction kernel (row_stats, sum_squares, gram, sign_stats, topk_energy) adds up. */
export const REDUCTION_BLOCK = 256;

/**
 * Per-thread partials of a fused output kernel (one per LINEAR_BLOCK = 16 elements) that partials_sum adds into one
 * before a GPU reads them back: one sum per REDUCTION_BLOCK elements.
 */
export const PARTIALS_GROUP = 16;

/** Number of REDUCTION_BLOCK blocks covering `numel` columns (one reduction-kernel thread each). */
export function reductionBlocks(numel: number): number {
  return Math.ceil(numel / REDUCTION_BLOCK);
}

/** WGSL source declaring the shared constants. */
export function wgslConstants(): string {
  return [
    `const WORKGROUP_SIZE: u32 = ${WORKGROUP_SIZE}u;`,
    `const DTYPE_F32: u32 = ${DTYPE_CODE.F32}u;`,
    `const DTYPE_F16: u32 = ${DTYPE_CODE.F16}u;`,
    `const DTYPE_BF16: u32 = ${DTYPE_CODE.BF16}u;`,
    `const MATMUL_TILE: u32 = ${MATMUL_TILE}u;`,
    `const SVD_BLOCK: u32 = ${SVD_BLOCK}u;`,
    `const SVD_APPLY_ROWS: u32 = ${SVD_APPLY_ROWS}u;`,
    `const SVD_SERIAL_THREADS: u32 = ${SVD_SERIAL_THREADS}u;`,
    `const HISTOGRAM_MAX_BINS: u32 = ${HISTOGRAM_MAX_BINS}u;`,
    `const TIES_SCAN_SHARDS: u32 = ${TIES_SCAN_SHARDS}u;`,
    `const TOPK_MAX_LEVELS: u32 = ${TOPK_MAX_LEVELS}u;`,
    `const MAX_COEFF_VEC4S: u32 = ${LINEAR_MAX_TASKS / 4}u;`,
    `const MAX_DROP_PARTS: u32 = ${MAX_DROP_PARTS}u;`,
    `const REDUCTION_BLOCK: u32 = ${REDUCTION_BLOCK}u;`,
    `const THREAD_ELEMENTS: u32 = ${THREAD_ELEMENTS}u;`,
    `const PARTIALS_GROUP: u32 = ${PARTIALS_GROUP}u;`,
    `const VIT_MAX_HEAD_DIM: u32 = ${VIT_MAX_HEAD_DIM}u;`,
    '',
  ].join('\n');
}

/** Rows and columns of C that one matmul workgroup computes (8 x 8 threads, 8 x 8 values each). */
export const MATMUL_TILE = 64;

/** Columns per block of the GPU block Jacobi SVD; one workgroup orthogonalises a pair of blocks (2 * SVD_BLOCK). */
export const SVD_BLOCK = 16;

/** Rows of a block pair that one svd_apply thread writes (its 8 accumulators are spelled out in the shader). */
export const SVD_APPLY_ROWS = 8;

/** Largest attention head size of vit_attention, which keeps a query and its output row in 2 x 32 named vec4s. */
export const VIT_MAX_HEAD_DIM = 128;

/** Threads per workgroup of svd_rotate_serial (one block pair each): small, so a step's few pairs spread over CPU cores. */
export const SVD_SERIAL_THREADS = 4;
