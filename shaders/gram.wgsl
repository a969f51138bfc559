// gram: per-workgroup partial dot products between the rows of a [rows, numel] f32 buffer, for every pair
// a <= b (the upper triangle of the Gram matrix, diagonal included; cosines, Model Stock and SLERP use it).
// Pair p is numbered row-major over the upper triangle: (0,0), (0,1), ..., (0,rows-1), (1,1), ...
// Each thread accumulates its strided share of the chunk in element order (products kept unfused), then the
// workgroup adds the 256 thread sums with a tree in workgroup memory; the host adds the partials in float64.
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, chunks: u32, chunk: u32, pairs: u32, zero: u32 }
//                chunk = elements per workgroup (a multiple of WORKGROUP_SIZE), chunks = ceil(numel / chunk),
//                pairs = rows * (rows + 1) / 2, zero = 0 (see `unfused` in common.wgsl)
//   1  data      storage, read        array<f32>   [rows, numel], row-major
//   2  partials  storage, read_write  array<f32>   [pairs, chunks]
// Dispatch: one workgroup per (pair, chunk), pairs * chunks workgroups on a 2-D grid (workgroup_index).
// Bounds: elements past numel count as 0; surplus workgroups write nothing. Every thread reaches every barrier.

struct Params {
  numel: u32,
  rows: u32,
  chunks: u32,
  chunk: u32,
  pairs: u32,
  zero: u32,
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
  let valid = w < params.pairs * params.chunks;
  var acc = 0.0;
  if (valid) {
    // Row a holds pairs (a, a..rows-1): step over whole rows of the triangle.
    var p = w / params.chunks;
    var a = 0u;
    while (p >= params.rows - a) {
      p -= params.rows - a;
      a++;
    }
    let b = a + p;
    let start = (w % params.chunks) * params.chunk;
    for (var k = lid; k < params.chunk; k += WORKGROUP_SIZE) {
      let i = start + k;
      if (i < params.numel) {
        acc += unfused(data[a * params.numel + i] * data[b * params.numel + i], params.zero);
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
