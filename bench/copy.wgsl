// Bandwidth probe of the benchmark (bench/probes.ts): dst = src on the same 2-D grid of WORKGROUP_SIZE-thread
// workgroups as the engine's elementwise kernels (flat_index from shaders/common.wgsl, which the host prepends).
// copy_vec4 moves VEC4S consecutive vec4<f32> per thread (pipeline constant, 1 by default); the probe times 1, 2
// and 4 and takes the fastest as the device's achievable bandwidth (on SwiftShader 2 or 4 per thread copied 1.4 to
// 2.3x faster than 1: each thread's fixed cost is spread over more bytes; on a GPU all three should lie close).
// copy_f32 moves one f32 per thread (the access pattern of the engine's scalar kernels).

struct Params {
  count: u32,
}

override VEC4S: u32 = 1u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> src1: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst1: array<f32>;

// params.count is the number of vec4s, a multiple of VEC4S.
@compute @workgroup_size(WORKGROUP_SIZE)
fn copy_vec4(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = VEC4S * flat_index(wg, nwg, lid);
  if (i < params.count) {
    for (var j = 0u; j < VEC4S; j++) {
      dst4[i + j] = src4[i + j];
    }
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
