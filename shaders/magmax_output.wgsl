// magmax_output: the whole output of MagMax for one chunk, straight from the raw model bytes, in one pass (host:
// LinearMergeKernel in src/engine/gpu/linearMerge.ts with this shader; twin: reference/linearMerge.ts magmaxOutputRef):
//   tau_t = decode(model t) - theta0                        (decode_stack)
//   w     = the last model of largest magnitude bits |tau_t|  (magmax_select: ">=", so later models win ties, and NaN,
//                                                          whose magnitude bits are the largest, wins its column)
//   delta = sum_t coeff_t * (t == w ? tau_t : +0)            (combine: f32 from +0 in model order)
//   out   = encode(theta0 + delta)                          (pack_add)
// bit for bit, plus linear_merge's per-thread partial sums of squares of theta0, each tau_t and delta. The losers'
// products are +-0 when every coefficient is finite (the host sends tensors with a non-finite one through the stack
// path), so combine's sum is +0 + coeff_w * tau_w, the winner's product rounded on its own: the walk keeps that
// product for the current winner and never adds.
//
// Pipeline constants, bindings and dispatch: as linear_merge (declared in _linear_io.wgsl; same partials layout).

// uses: _raw_block
// uses: _linear_io
// uses: _coeffs
// uses: _fused_out

// One quad's winner so far: its magnitude bits and its coefficient * tau product.
struct Best { mag: vec4<u32>, term: vec4<f32> }

fn keep_best(b: Best, tau: vec4<f32>, coeff: f32, zero: u32) -> Best {
  let mag = bitcast<vec4<u32>>(tau) & vec4<u32>(0x7fffffffu);
  let up = mag >= b.mag;
  return Best(select(b.mag, mag, up), select(b.term, unfused4(coeff * tau, zero), up));
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
  // Model 0 is the first winner of every column (magnitude bits >= 0 always hold).
  let u0 = vec4<u32>(0u);
  let z4 = vec4<f32>(0.0);
  var ba = Best(u0, z4);
  var bb = Best(u0, z4);
  var bc = Best(u0, z4);
  var bd = Best(u0, z4);
  for (var t = 0u; t < params.tasks; t++) {
    let tau = tau_block(t, k, theta);
    let coeff = coeff_of(t, first);
    ba = keep_best(ba, tau.a, coeff, zero);
    bb = keep_best(bb, tau.b, coeff, zero);
    bc = keep_best(bc, tau.c, coeff, zero);
    bd = keep_best(bd, tau.d, coeff, zero);
    if (NORMS) {
      partials[(t + 1u) * threads + k] = sum_sq(tau);
    }
  }
  // combine's running sum starts at +0 (so a -0 product gives +0).
  let delta = F4(from_zero4(ba.term, zero), from_zero4(bb.term, zero), from_zero4(bc.term, zero), from_zero4(bd.term, zero));
  let merged = F4(theta.a + delta.a, theta.b + delta.b, theta.c + delta.c, theta.d + delta.d);
  store_block(k, merged);
  if (NORMS) {
    partials[k] = sum_sq(theta);
    partials[(params.tasks + 1u) * threads + k] = sum_sq(delta);
  }
  if (FINITE) {
    partials[k] = select(0.0, 1.0, nonfinite_block(merged));
  }
}
