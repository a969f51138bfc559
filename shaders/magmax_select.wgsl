// magmax_select: MagMax, in place on a stack of task vectors: per column only the row with the largest |x| keeps
// its value, the others become +0; a later row wins ties (">=", FusionBench's running update), as in
// src/engine/reference/methods/magmax.ts. Magnitudes are compared as bit patterns (the numeric order for
// non-negative floats, immune to subnormal flushing); NaN has the largest magnitude bits, so a NaN entry wins
// its column instead of being hidden (the float64 reference's comparisons with NaN are false).
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32 }
//   1  stack   storage, read_write  array<u32>   [rows, numel] f32 bit patterns, row-major
// Dispatch: one thread per THREAD_ELEMENTS = 4 consecutive columns, WORKGROUP_SIZE threads per workgroup, on a 2-D grid
// (flat_index). The four columns go through the row loop together as vec4s: CPU-emulated devices ran one column per
// thread about 2x slower. Rows need not be 16-byte aligned, so loads and stores stay scalar.
// Bounds: columns j >= numel are neither read nor written. The winner keeps its exact bits.

struct Params {
  numel: u32,
  rows: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> stack: array<u32>;


// One column on its own (the last, partial group).
fn select_column(j: u32) {
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

fn load4(at: u32) -> vec4<u32> {
  return vec4<u32>(stack[at], stack[at + 1u], stack[at + 2u], stack[at + 3u]);
}

// The body below is written for 4 elements per thread.
const_assert THREAD_ELEMENTS == 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = THREAD_ELEMENTS * flat_index(wg, nwg, lid);
  let n = params.numel;
  if (j >= n) {
    return;
  }
  if (j + THREAD_ELEMENTS > n) {
    for (var i = j; i < n; i++) {
      select_column(i);
    }
    return;
  }
  var win = vec4<u32>(0u);
  var win_mag = load4(j) & vec4<u32>(0x7fffffffu);
  for (var r = 1u; r < params.rows; r++) {
    let mag = load4(r * n + j) & vec4<u32>(0x7fffffffu);
    let up = mag >= win_mag;
    win = select(win, vec4<u32>(r), up);
    win_mag = select(win_mag, mag, up);
  }
  for (var r = 0u; r < params.rows; r++) {
    let at = r * n + j;
    let keep = win == vec4<u32>(r);
    let x = load4(at);
    let out = select(vec4<u32>(0u), x, keep);
    stack[at] = out.x;
    stack[at + 1u] = out.y;
    stack[at + 2u] = out.z;
    stack[at + 3u] = out.w;
  }
}
