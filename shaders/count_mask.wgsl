// count_mask: the Consensus mask, in place on a stack: column j of every row is zeroed unless counts[j] >= k
// (counts from tall_mask: how many tasks use weight j). Bit-level: kept entries keep their exact bits.
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32, k: u32 }
//   1  counts  storage, read        array<u32>   [numel]
//   2  stack   storage, read_write  array<u32>   [rows, numel] f32 bit patterns, row-major
// Dispatch: one thread per column j, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing. Dropped entries become +0.

struct Params {
  numel: u32,
  rows: u32,
  k: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> stack: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = flat_index(wg, nwg, lid);
  if (j >= params.numel || counts[j] >= params.k) {
    return;
  }
  for (var r = 0u; r < params.rows; r++) {
    stack[r * params.numel + j] = 0u;
  }
}
