// scale_add: dst = alpha * dst + beta * src, elementwise (the running updates of continual merging:
// OPCM's R = lambda_prev * D + tau~ and its rescale, continual averaging, continual task arithmetic).
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, alpha: f32 bits, beta: f32 bits, zero: u32 (always 0, see `unfused`) }
//   1  src     storage, read        array<f32>   numel elements (may be unused when beta == 0, but must be bound)
//   2  dst     storage, read_write  array<f32>   numel elements
// Dispatch: one thread per element, WORKGROUP_SIZE per workgroup, 2-D grid (flat_index); threads past numel return.
// Both products are rounded before the add (no fused multiply-add), as the CPU twin computes.

struct Params {
  numel: u32,
  alpha: u32,
  beta: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

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
  let a = unfused(bitcast<f32>(params.alpha) * dst[j], params.zero);
  let b = unfused(bitcast<f32>(params.beta) * src[j], params.zero);
  dst[j] = a + b;
}
