// dare_drop: DARE random drop and rescale, in place on a stack of task vectors.
//   u = rng_uniform(keys[r], element_offset + j)
//   stack[r * numel + j] = u >= p ? x * scale : 0
// The decision depends only on (key, index within the tensor), so a tensor processed in chunks (element_offset =
// index of the chunk's first element) gets the same mask as in one piece, and the same as the CPU
// (src/engine/reference/methods/dare.ts dareKeepMask: uniforms are multiples of 2^-24, exact in f32).
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32, element_offset: u32, p: f32, scale: f32 }
//   1  keys    storage, read        array<u32>   one RNG key per row (rng.ts rngKey(seed, task, stringId(tensor)))
//   2  stack   storage, read_write  array<f32>   [rows, numel], row-major
// Dispatch: one thread per column j, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing. scale == 1 leaves kept values untouched (no multiply, so even a
// device that flushes subnormals keeps them); otherwise one rounded f32 multiply. Dropped entries become +0.

struct Params {
  numel: u32,
  rows: u32,
  element_offset: u32,
  p: f32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> stack: array<f32>;

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
  let index = params.element_offset + j;
  for (var r = 0u; r < params.rows; r++) {
    let i = r * params.numel + j;
    if (rng_uniform(keys[r], index) < params.p) {
      stack[i] = 0.0;
    } else if (params.scale != 1.0) {
      stack[i] = stack[i] * params.scale;
    }
  }
}
