// Bandwidth probe of the benchmark (bench/probes.ts): dst = src, one element per thread, on the same 2-D grid of
// WORKGROUP_SIZE-thread workgroups as the engine's elementwise kernels (flat_index from shaders/common.wgsl, which the
// host prepends). copy_vec4 moves one vec4<f32> per thread (the device's achievable bandwidth); copy_f32 one f32
// (the access pattern of the engine's kernels).

struct Params {
  count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> src1: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst1: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn copy_vec4(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wg, nwg, lid);
  if (i < params.count) {
    dst4[i] = src4[i];
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn copy_f32(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wg, nwg, lid);
  if (i < params.count) {
    dst1[i] = src1[i];
  }
}
