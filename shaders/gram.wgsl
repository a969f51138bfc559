// gram: per-block partial dot products between the rows of a [rows, numel] f32 buffer, for every pair a <= b (the
// upper triangle of the Gram matrix, diagonal included; cosines, Model Stock and SLERP use it).
// Pair p is numbered row-major over the upper triangle: (0,0), (0,1), ..., (0,rows-1), (1,1), ...
// One thread per (pair, block of REDUCTION_BLOCK consecutive elements) adds its block's products (kept unfused) in
// four running sums, element i into sum i % 4 in element order, and writes (s0 + s1) + (s2 + s3); the host adds a
// pair's partials in float64. Rows are read a quad per step (QuadRows: each row starts on a whole vec4): on a
// CPU-emulated device a storage access costs about as much whatever its width, and one f32 per step ran about 3x
// slower. No workgroup barriers (see row_stats).
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, pairs: u32, zero: u32, quads: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK), pairs = rows * (rows + 1) / 2, zero = 0 (see `unfused`),
//                quads = ceil(numel / 4)
//   1  data      storage, read        array<vec4<f32>>   [rows, quads]: row r's elements from vec4 r * quads; the
//                                                        words past numel are not read
//   2  partials  storage, read_write  array<f32>         [pairs, blocks]
// Dispatch: one thread per (pair, block), pairs * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return.

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  pairs: u32,
  zero: u32,
  quads: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<vec4<f32>>;
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
  let zero = params.zero;
  let ra = a * params.quads;
  let rb = b * params.quads;
  // span.x is a multiple of 4: quad q holds elements 4q..4q+3, each in its own sum.
  let full = span.y / 4u;
  var acc = vec4<f32>(0.0);
  for (var q = span.x / 4u; q < full; q++) {
    acc += unfused4(data[ra + q] * data[rb + q], zero);
  }
  if (span.y % 4u != 0u) {
    let tail = unfused4(data[ra + full] * data[rb + full], zero);
    acc = select(acc, acc + tail, lanes_below(4u * full, span.y));
  }
  partials[k] = lane_total(acc);
}
