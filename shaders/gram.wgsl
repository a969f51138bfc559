// gram: per-block partial dot products between the rows of a [rows, numel] f32 buffer, for every pair a <= b (the
// upper triangle of the Gram matrix, diagonal included; cosines, Model Stock and SLERP use it).
// Pair p is numbered row-major over the upper triangle: (0,0), (0,1), ..., (0,rows-1), (1,1), ...
// One thread per (pair, block of REDUCTION_BLOCK consecutive elements) adds its block's products in element order
// (kept unfused) and writes one partial; the host adds a pair's partials in float64. No workgroup barriers (see
// row_stats).
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, pairs: u32, zero: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK), pairs = rows * (rows + 1) / 2, zero = 0 (see `unfused`)
//   1  data      storage, read        array<f32>   [rows, numel], row-major
//   2  partials  storage, read_write  array<f32>   [pairs, blocks]
// Dispatch: one thread per (pair, block), pairs * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return.

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  pairs: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  if (k >= params.pairs * params.blocks) {
    return;
  }
  // Row a holds pairs (a, a..rows-1): step over whole rows of the triangle.
  var p = k / params.blocks;
  var a = 0u;
  while (p >= params.rows - a) {
    p -= params.rows - a;
    a++;
  }
  let b = a + p;
  let span = block_span(k % params.blocks, params.numel);
  var acc = 0.0;
  for (var i = span.x; i < span.y; i++) {
    acc += unfused(data[a * params.numel + i] * data[b * params.numel + i], params.zero);
  }
  partials[k] = acc;
}
