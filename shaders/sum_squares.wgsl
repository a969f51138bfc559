// sum_squares: per-workgroup partial sums of squares of each row of a [rows, numel] f32 buffer.
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, chunks: u32, chunk: u32 }
//                chunk = elements per workgroup (a multiple of WORKGROUP_SIZE), chunks = ceil(numel / chunk)
//   1  data      storage, read        array<f32>   [rows, numel], row-major
//   2  partials  storage, read_write  array<f32>   [rows, chunks]: partials[r * chunks + c] = sum of squares of
//                                                  row r's elements c * chunk .. (c + 1) * chunk - 1
// Dispatch: one workgroup per (row, chunk) pair, rows * chunks workgroups on a 2-D grid (workgroup_index).
// Each thread sums the squares of its strided share of the chunk in f32, then the workgroup adds the 256
// thread sums with a tree in workgroup memory. The host adds the partials of each row in float64.
// Bounds: elements past numel count as 0; surplus workgroups of the grid write nothing. Every thread reaches
// every barrier (no early return), as WGSL's uniformity rules require.

struct Params {
  numel: u32,
  rows: u32,
  chunks: u32,
  chunk: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

var<workgroup> sums: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = workgroup_index(wg, nwg);
  let valid = w < params.rows * params.chunks;
  let row = w / params.chunks;
  let start = (w % params.chunks) * params.chunk;
  var acc = 0.0;
  if (valid) {
    for (var k = lid; k < params.chunk; k += WORKGROUP_SIZE) {
      let i = start + k;
      if (i < params.numel) {
        let x = data[row * params.numel + i];
        acc += x * x;
      }
    }
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      sums[lid] += sums[lid + stride];
    }
    workgroupBarrier();
  }
  if (valid && lid == 0u) {
    partials[w] = sums[0];
  }
}
