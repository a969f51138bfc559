// sign_sum: the TIES "majority sign" pre-pass. For every column j, gamma_j = sign(sum over rows of x[r, j]) with
// the sum in f32 from 0 in row order 0..rows-1; each workgroup writes the sum of gamma_j over its chunk of columns.
// The host adds the partials (exact integers); summed over every chunk of every tensor, its sign is the majority
// sign that disjoint_merge uses for columns whose sum is 0.
// The sign is read from the sum's bits: +-0 gives 0, and a NaN sum gives 0 too (the float64 reference would make
// the whole majority NaN; callers reject non-finite task vectors before merging).
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, chunks: u32, chunk: u32 }
//                chunk = columns per workgroup (a multiple of WORKGROUP_SIZE), chunks = ceil(numel / chunk)
//   1  stack     storage, read        array<f32>   [rows, numel], row-major
//   2  partials  storage, read_write  array<i32>   [chunks]
// Dispatch: one workgroup per chunk on a 2-D grid (workgroup_index). Each thread handles columns
// start + lid + k * WORKGROUP_SIZE, then the workgroup adds the thread sums with a tree in workgroup memory.
// Bounds: columns past numel count 0; surplus workgroups write nothing. Every thread reaches every barrier.

struct Params {
  numel: u32,
  rows: u32,
  chunks: u32,
  chunk: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stack: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<i32>;

var<workgroup> sums: array<i32, WORKGROUP_SIZE>;

// -1, 0 or +1 from the bits of a column sum; NaN gives 0.
fn sign_of_sum(s: f32) -> i32 {
  let bits = bitcast<u32>(s);
  let mag = bits & 0x7fffffffu;
  if (mag == 0u || mag > 0x7f800000u) {
    return 0;
  }
  return select(1, -1, (bits >> 31u) == 1u);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = workgroup_index(wg, nwg);
  let valid = w < params.chunks;
  let start = w * params.chunk;
  var acc = 0;
  if (valid) {
    for (var k = lid; k < params.chunk; k += WORKGROUP_SIZE) {
      let j = start + k;
      if (j < params.numel) {
        var s = 0.0;
        for (var r = 0u; r < params.rows; r++) {
          s += stack[r * params.numel + j];
        }
        acc += sign_of_sum(s);
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
