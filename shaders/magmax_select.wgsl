// magmax_select: MagMax, in place on a stack of task vectors: per column only the row with the largest |x| keeps
// its value, the others become +0; a later row wins ties (">=", FusionBench's running update), as in
// src/engine/reference/methods/magmax.ts. Magnitudes are compared as bit patterns (the numeric order for
// non-negative floats, immune to subnormal flushing); NaN has the largest magnitude bits, so a NaN entry wins
// its column instead of being hidden (the float64 reference's comparisons with NaN are false).
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32 }
//   1  stack   storage, read_write  array<u32>   [rows, numel] f32 bit patterns, row-major
// Dispatch: one thread per column j, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing. The winner keeps its exact bits.

struct Params {
  numel: u32,
  rows: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> stack: array<u32>;

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
  let n = params.numel;
  var win = 0u;
  var win_mag = stack[j] & 0x7fffffffu;
  for (var r = 1u; r < params.rows; r++) {
    let mag = stack[r * n + j] & 0x7fffffffu;
    if (mag >= win_mag) {
      win = r;
      win_mag = mag;
    }
  }
  for (var r = 0u; r < params.rows; r++) {
    if (r != win) {
      stack[r * n + j] = 0u;
    }
  }
}
