// combine: weighted sum of the rows of a stack.   out[j] = sum over r of coeffs[r] * stack[r * numel + j]
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32, zero: u32 }   zero is always 0 (see `unfused` in common.wgsl)
//   1  coeffs  storage, read        array<f32>   one coefficient per row (a storage buffer, so any number of models)
//   2  stack   storage, read        array<f32>   [rows, numel], row-major
//   3  out     storage, read_write  array<f32>   numel elements
// Dispatch: one thread per element, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing. The sum starts at 0 and adds rows in order 0..rows-1 in f32, one
// rounded product and one rounded add per row (never a fused multiply-add), so the CPU twin reproduces it exactly.

struct Params {
  numel: u32,
  rows: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> coeffs: array<f32>;
@group(0) @binding(2) var<storage, read> stack: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
  var acc = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    acc += unfused(coeffs[r] * stack[r * params.numel + j], params.zero);
  }
  out[j] = acc;
}
