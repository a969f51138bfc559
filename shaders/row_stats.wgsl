// row_stats: per-workgroup partial statistics of each row of a [rows, numel] f32 buffer:
//   sum of x^2 and sum of |x| (f32), number of non-zero entries (bits other than +-0; NaN counts) and number of
//   non-finite entries (infinity or NaN, from the exponent bits) (u32).
// Each thread accumulates its strided share of the chunk in element order, then the workgroup adds the 256
// thread values with a tree in workgroup memory; the host adds the partials of each row in float64. The twin
// (src/engine/reference/mergeReductions.ts) follows the same order, so the f32 partials match bit for bit on
// devices that keep subnormals. x * x is kept unfused (common.wgsl `unfused`).
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, chunks: u32, chunk: u32, zero: u32 }
//                chunk = elements per workgroup (a multiple of WORKGROUP_SIZE), chunks = ceil(numel / chunk),
//                zero = 0 (see `unfused`)
//   1  data      storage, read        array<f32>   [rows, numel], row-major
//   2  partials  storage, read_write  array<u32>   [rows, chunks, 4]: bits of f32 sum x^2, bits of f32 sum |x|,
//                                                  non-zero count, non-finite count
// Dispatch: one workgroup per (row, chunk) pair, rows * chunks workgroups on a 2-D grid (workgroup_index).
// Bounds: elements past numel count as 0; surplus workgroups write nothing. Every thread reaches every barrier.

struct Params {
  numel: u32,
  rows: u32,
  chunks: u32,
  chunk: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<u32>;

var<workgroup> squares: array<f32, WORKGROUP_SIZE>;
var<workgroup> magnitudes: array<f32, WORKGROUP_SIZE>;
var<workgroup> nonzero: array<u32, WORKGROUP_SIZE>;
var<workgroup> nonfinite: array<u32, WORKGROUP_SIZE>;

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
  var sq = 0.0;
  var ab = 0.0;
  var nz = 0u;
  var nf = 0u;
  if (valid) {
    for (var k = lid; k < params.chunk; k += WORKGROUP_SIZE) {
      let i = start + k;
      if (i < params.numel) {
        let x = data[row * params.numel + i];
        let bits = bitcast<u32>(x);
        sq += unfused(x * x, params.zero);
        ab += abs(x);
        nz += select(0u, 1u, (bits & 0x7fffffffu) != 0u);
        nf += select(0u, 1u, (bits & 0x7f800000u) == 0x7f800000u);
      }
    }
  }
  squares[lid] = sq;
  magnitudes[lid] = ab;
  nonzero[lid] = nz;
  nonfinite[lid] = nf;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      squares[lid] += squares[lid + stride];
      magnitudes[lid] += magnitudes[lid + stride];
      nonzero[lid] += nonzero[lid + stride];
      nonfinite[lid] += nonfinite[lid + stride];
    }
    workgroupBarrier();
  }
  if (valid && lid == 0u) {
    partials[4u * w] = bitcast<u32>(squares[0]);
    partials[4u * w + 1u] = bitcast<u32>(magnitudes[0]);
    partials[4u * w + 2u] = nonzero[0];
    partials[4u * w + 3u] = nonfinite[0];
  }
}
