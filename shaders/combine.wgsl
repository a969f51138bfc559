// combine: weighted sum of the rows of a stack.   out[j] = sum over r of coeffs[r] * stack[r * numel + j]
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32, zero: u32 }   zero is always 0 (see `unfused` in common.wgsl)
//   1  coeffs  storage, read        array<f32>   one coefficient per row (a storage buffer, so any number of models)
//   2  stack   storage, read        array<f32>   [rows, numel], row-major
//   3  out     storage, read_write  array<f32>   numel elements
// Dispatch: one thread per THREAD_ELEMENTS = 4 consecutive elements, WORKGROUP_SIZE threads per workgroup, on a 2-D
// grid (flat_index). Four sums per thread amortise the row loop: CPU-emulated devices ran one element per thread
// about 2x slower. Rows need not be 16-byte aligned, so the loads stay scalar.
// Bounds: elements j >= numel are neither read nor written. Each sum starts at 0 and adds rows in order 0..rows-1 in
// f32, one rounded product and one rounded add per row (never a fused multiply-add), so the CPU twin reproduces it
// exactly.

struct Params {
  numel: u32,
  rows: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> coeffs: array<f32>;
@group(0) @binding(2) var<storage, read> stack: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;


// The body below is written for 4 elements per thread.
const_assert THREAD_ELEMENTS == 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = THREAD_ELEMENTS * flat_index(wg, nwg, lid);
  let numel = params.numel;
  if (j >= numel) {
    return;
  }
  let zero = params.zero;
  if (j + THREAD_ELEMENTS <= numel) {
    var acc = vec4<f32>(0.0);
    for (var r = 0u; r < params.rows; r++) {
      let at = r * numel + j;
      let x = vec4<f32>(stack[at], stack[at + 1u], stack[at + 2u], stack[at + 3u]);
      acc += unfused4(coeffs[r] * x, zero);
    }
    out[j] = acc.x;
    out[j + 1u] = acc.y;
    out[j + 2u] = acc.z;
    out[j + 3u] = acc.w;
    return;
  }
  // The last, partial group.
  for (var i = j; i < numel; i++) {
    var acc = 0.0;
    for (var r = 0u; r < params.rows; r++) {
      acc += unfused(coeffs[r] * stack[r * numel + i], zero);
    }
    out[i] = acc;
  }
}
