// sum_squares: per-block partial sums of squares of each row of a [rows, numel] f32 buffer.
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK) per row
//   1  data      storage, read        array<f32>   [rows, numel], row-major
//   2  partials  storage, read_write  array<f32>   [rows, blocks]: partials[r * blocks + b] = sum of squares of
//                                                  row r's elements b * REDUCTION_BLOCK .. (b + 1) * REDUCTION_BLOCK - 1
// Dispatch: one thread per (row, block), rows * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return. Each thread sums the squares of its block in element order in f32; the host
// adds the partials of each row in float64. No workgroup barriers (see row_stats).

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
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
  if (k >= params.rows * params.blocks) {
    return;
  }
  let row = k / params.blocks;
  let span = block_span(k % params.blocks, params.numel) + vec2<u32>(row * params.numel);
  var sum = 0.0;
  for (var i = span.x; i < span.y; i++) {
    let x = data[i];
    sum += x * x;
  }
  partials[k] = sum;
}
