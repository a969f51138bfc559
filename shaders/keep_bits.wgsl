// keep_bits: which rows of a [rows, numel] f32 stack hold anything but +0 at each column (rows <= 32):
//   words[j] = OR over r of (bits(stack[r * numel + j]) != 0) << r
// The bits a merge keeps of its contributions (a -0 or a NaN is kept, a +0 is not), from which linear_merge's MASKED
// pipeline rebuilds those contributions from the task vectors (src/engine/merge/keptBits.ts).
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32 }
//   1  stack   storage, read        array<u32>   [rows, numel] f32 bit patterns, row-major
//   2  words   storage, read_write  array<u32>   [numel]
// Dispatch: one thread per column, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing.

struct Params {
  numel: u32,
  rows: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stack: array<u32>;
@group(0) @binding(2) var<storage, read_write> words: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = flat_index(wg, nwg, lid);
  if (j >= params.numel) {
    return;
  }
  var w = 0u;
  for (var r = 0u; r < params.rows; r++) {
    w |= select(0u, 1u << r, stack[r * params.numel + j] != 0u);
  }
  words[j] = w;
}
