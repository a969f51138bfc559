// consensus_output: the whole output of Consensus Merging (then = Task Arithmetic) for one chunk, straight from the raw
// model bytes, in one pass (host: LinearMergeKernel in src/engine/gpu/linearMerge.ts with this shader; twin:
// reference/linearMerge.ts consensusOutputRef):
//   tau_t  = decode(model t) - theta0                              (decode_stack)
//   mtl    = sum_t tau_t, f32 from +0 in model order               (combine with coefficients 1)
//   m_t    = |tau_t| > mask_lambda_t * |mtl - tau_t|               (tall_mask: one rounded subtraction, one product)
//   count  = sum_t m_t
//   delta  = count >= k ? sum_t coeff_t * tau_t : +0               (count_mask zeroes the column, then combine)
//   out    = encode(theta0 + delta)                                (pack_add)
// bit for bit, plus linear_merge's per-thread partial sums of squares of theta0, each tau_t and delta. A zeroed
// column's products coeff_t * +0 are +-0 when every coefficient is finite (the host sends tensors with a non-finite
// coefficient or mask lambda through the stack path), so combine's sum there is +0. Like tall_mask, the masks assume
// finite inputs (WGSL leaves comparisons with NaN undefined).
//
// Pipeline constants, bindings and dispatch: as linear_merge (declared in _linear_io.wgsl; same partials layout), with
// params.keys[t / 4][t % 4] holding mask_lambda_t's f32 bits and params.mask_k holding k. The models are read twice
// per thread: once for mtl, once for the masks and the sum.

// uses: _raw_block
// uses: _linear_io
// uses: _coeffs
// uses: _fused_out

// 1 in each lane whose task uses the weight.
fn uses(tau: vec4<f32>, mtl: vec4<f32>, lambda: f32) -> vec4<u32> {
  return select(vec4<u32>(0u), vec4<u32>(1u), tall_keeps(tau, mtl, lambda));
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
  let zero = params.zero;
  let first = first_coeff();
  let theta = load_block(0u, k, BASE_DTYPE);
  let mtl = task_sum_block(k, theta);
  let z4 = vec4<f32>(0.0);
  let u0 = vec4<u32>(0u);
  var count = U4(u0, u0, u0, u0);
  var acc = F4(z4, z4, z4, z4);
  for (var t = 0u; t < params.tasks; t++) {
    let tau = tau_block(t, k, theta);
    let lambda = mask_lambda_of(t);
    count.a += uses(tau.a, mtl.a, lambda);
    count.b += uses(tau.b, mtl.b, lambda);
    count.c += uses(tau.c, mtl.c, lambda);
    count.d += uses(tau.d, mtl.d, lambda);
    let coeff = coeff_of(t, first);
    acc.a += unfused4(coeff * tau.a, zero);
    acc.b += unfused4(coeff * tau.b, zero);
    acc.c += unfused4(coeff * tau.c, zero);
    acc.d += unfused4(coeff * tau.d, zero);
  }
  let need = vec4<u32>(params.mask_k);
  let delta = F4(select(z4, acc.a, count.a >= need), select(z4, acc.b, count.b >= need), select(z4, acc.c, count.c >= need), select(z4, acc.d, count.d >= need));
  let merged = F4(theta.a + delta.a, theta.b + delta.b, theta.c + delta.c, theta.d + delta.d);
  store_block(k, merged);
  if (NORMS) {
    partials[k] = sum_sq(theta);
    partials[(params.tasks + 1u) * threads + k] = sum_sq(delta);
  }
  if (FINITE) {
    // A mask may drop a NaN or an infinity: mtl, the sum of every tau_t, still holds it.
    partials[k] = select(0.0, 1.0, nonfinite_block(merged) || nonfinite_block(mtl));
  }
}
