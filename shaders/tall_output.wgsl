// tall_output: TALL masks' T models for one chunk, straight from the raw model bytes, in one pass (host:
// LinearMergeKernel in src/engine/gpu/linearMerge.ts with this shader; twin: reference/linearMerge.ts tallOutputRef):
//   tau_t  = decode(model t) - theta0                              (decode_stack)
//   mtl    = sum_t tau_t, f32 from +0 in model order               (combine with coefficients 1)
//   m_t    = |tau_t| > mask_lambda_t * |mtl - tau_t|               (tall_mask: one rounded subtraction, one product)
//   out_t  = encode(theta0 + (m_t ? mtl : +0))                     (bitmask_apply, then pack_add)
// bit for bit, where the stack path runs those six kernels and T readbacks per chunk. Plus linear_merge's per-thread
// partial sums of squares of theta0, each tau_t and the delta of output 0 (the report's merged norm is output 0's, as
// on the stack path). Like tall_mask, the masks assume finite inputs (WGSL leaves comparisons with NaN undefined).
//
// Pipeline constants, bindings and dispatch: as linear_merge (declared in _linear_io.wgsl; same partials layout), with
// params.keys[t / 4][t % 4] holding mask_lambda_t's f32 bits (the coefficients are not read), and `out` holding the T
// outputs one after the other, output t from vec4 t * params.out_stride (each padded to whole blocks). FINITE: the
// flag of block k is set where any output's merged values or mtl (which holds every NaN or infinity of the task
// vectors, whichever entries the masks keep) hold a NaN or an infinity. The models are read twice per thread: once
// for mtl, once for the masks.

// uses: _raw_block
// uses: _linear_io
// uses: _fused_out

// mtl in the lanes whose task keeps the weight, +0 in the others.
fn masked(tau: vec4<f32>, mtl: vec4<f32>, lambda: f32) -> vec4<f32> {
  return select(vec4<f32>(0.0), mtl, tall_keeps(tau, mtl, lambda));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  let threads = params.threads;
  if (k >= threads) {
    return;
  }
  let theta = load_block(0u, k, BASE_DTYPE);
  let mtl = task_sum_block(k, theta);
  var flagged = FINITE && nonfinite_block(mtl);
  for (var t = 0u; t < params.tasks; t++) {
    let tau = tau_block(t, k, theta);
    let lambda = mask_lambda_of(t);
    let delta = F4(masked(tau.a, mtl.a, lambda), masked(tau.b, mtl.b, lambda), masked(tau.c, mtl.c, lambda), masked(tau.d, mtl.d, lambda));
    let merged = F4(theta.a + delta.a, theta.b + delta.b, theta.c + delta.c, theta.d + delta.d);
    store_block_at(t * params.out_stride, k, merged);
    if (NORMS && t == 0u) {
      partials[(params.tasks + 1u) * threads + k] = sum_sq(delta);
    }
    if (FINITE) {
      flagged = flagged || nonfinite_block(merged);
    }
  }
  if (NORMS) {
    partials[k] = sum_sq(theta);
  }
  if (FINITE) {
    partials[k] = select(0.0, 1.0, flagged);
  }
}
