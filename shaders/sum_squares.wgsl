// sum_squares: per-block partial sums of squares of each row of a [rows, numel] f32 buffer.
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, quads: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK) per row, quads = ceil(numel / 4)
//   1  data      storage, read        array<vec4<f32>>   [rows, quads]: row r's elements from vec4 r * quads (the
//                                                        words past numel are not read)
//   2  partials  storage, read_write  array<f32>   [rows, blocks]: partials[r * blocks + b] = sum of squares of
//                                                  row r's elements b * REDUCTION_BLOCK .. (b + 1) * REDUCTION_BLOCK - 1
// Dispatch: one thread per (row, block), rows * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return. Each thread sums the squares of its block in f32, a quad per step (QuadRows:
// each row starts on a whole vec4) in four running sums, then (s0 + s1) + (s2 + s3); the host adds the partials of
// each row in float64. No workgroup barriers (see row_stats).

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
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
  if (k >= params.rows * params.blocks) {
    return;
  }
  let row = k / params.blocks;
  let span = block_span(k % params.blocks, params.numel);
  let first = row * params.quads;
  // span.x is a multiple of 4: quad q holds elements 4q..4q+3; a partial last quad is masked.
  var sum = vec4<f32>(0.0);
  for (var q = span.x / 4u; q < (span.y + 3u) / 4u; q++) {
    let x = data[first + q];
    sum = select(sum, sum + x * x, lanes_below(4u * q, span.y));
  }
  partials[k] = lane_total(sum);
}
