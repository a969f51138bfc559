// gram_raw: gram's per-block partial dot products (gram.wgsl: same pairs, tiles, running sums and partials layout),
// straight from a chunk's raw model bytes, without the task-vector stack: row r < tasks is tau_r = decode(model r) -
// theta0 (as decode_stack makes it), and with THETA_ROW row `tasks` is theta0 itself (SLERP's third row). The f32
// operations are decode_stack's and gram's in their order, so the partials are gram's over the decoded rows bit for
// bit: the raw segments are zero-padded to whole blocks of 16, whose +0 products leave a running sum as gram's masked
// tail does (a sum that starts at +0 never becomes -0). Twin: reference/mergeReductions.ts gramPartialsRef over
// reference/linearMerge.ts decodeStackRef.
// Model Stock's and SLERP's Gram pass reads the models this way when nothing needs the stack afterwards.
//
// Pipeline constants: BASE_DTYPE, MODEL_DTYPE (every model in one dtype), THETA_ROW.
// Bindings (group 0):
//   0  params    uniform { numel, rows, blocks, tiles, zero, model_first, model_stride, tasks }
//                blocks = ceil(numel / REDUCTION_BLOCK), tiles = n (n + 1) / 2 with n = ceil(rows / 2), zero = 0
//                (see `unfused`), rows = tasks (+ 1 with THETA_ROW)
//   1  inputs    storage, read        array<vec4<u32>>  raw bytes as linear_merge's: theta0 from vec4 0, model t from
//                                                       vec4 model_first + t * model_stride, each zero-padded to whole
//                                                       16-element blocks
//   2  partials  storage, read_write  array<f32>        [pairs, blocks], pairs = rows * (rows + 1) / 2
// Dispatch: one thread per (tile, block), tiles * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index), tiles numbered row-major over the upper triangle as pairs are; surplus threads return.

// uses: _raw_block
// uses: _gram_tile

override BASE_DTYPE: u32 = DTYPE_F32;
override MODEL_DTYPE: u32 = DTYPE_F32;
override THETA_ROW: bool = false;

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  tiles: u32,
  zero: u32,
  model_first: u32,
  model_stride: u32,
  tasks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inputs: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

// Row r on block kk of 16 elements: tau_r, or (THETA_ROW, r == tasks) theta0.
fn row_block(r: u32, kk: u32, theta: F4) -> F4 {
  let tau = tau_block(min(r, params.tasks - 1u), kk, theta);
  if (THETA_ROW) {
    let own = r == params.tasks;
    return F4(select(tau.a, theta.a, own), select(tau.b, theta.b, own), select(tau.c, theta.c, own), select(tau.d, theta.d, own));
  }
  return tau;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  if (k >= params.tiles * params.blocks) {
    return;
  }
  let tile = gram_tile(k);
  let zero = params.zero;
  // Blocks of 16 elements (all of them zero-padded inputs) from this thread's REDUCTION_BLOCK elements.
  let first = tile.block * (REDUCTION_BLOCK / 16u);
  let end = min(first + REDUCTION_BLOCK / 16u, (params.numel + 15u) / 16u);
  let z = vec4<f32>(0.0);
  var s00 = z;
  var s01 = z;
  var s10 = z;
  var s11 = z;
  for (var kk = first; kk < end; kk++) {
    let theta = load_block(0u, kk, BASE_DTYPE);
    let xa0 = row_block(tile.a0, kk, theta);
    let xa1 = row_block(tile.a1, kk, theta);
    let xb0 = row_block(tile.b0, kk, theta);
    let xb1 = row_block(tile.b1, kk, theta);
    // Quads in element order, as gram walks them.
    s00 += unfused4(xa0.a * xb0.a, zero);
    s01 += unfused4(xa0.a * xb1.a, zero);
    s10 += unfused4(xa1.a * xb0.a, zero);
    s11 += unfused4(xa1.a * xb1.a, zero);
    s00 += unfused4(xa0.b * xb0.b, zero);
    s01 += unfused4(xa0.b * xb1.b, zero);
    s10 += unfused4(xa1.b * xb0.b, zero);
    s11 += unfused4(xa1.b * xb1.b, zero);
    s00 += unfused4(xa0.c * xb0.c, zero);
    s01 += unfused4(xa0.c * xb1.c, zero);
    s10 += unfused4(xa1.c * xb0.c, zero);
    s11 += unfused4(xa1.c * xb1.c, zero);
    s00 += unfused4(xa0.d * xb0.d, zero);
    s01 += unfused4(xa0.d * xb1.d, zero);
    s10 += unfused4(xa1.d * xb0.d, zero);
    s11 += unfused4(xa1.d * xb1.d, zero);
  }
  store_tile(tile, s00, s01, s10, s11);
}
