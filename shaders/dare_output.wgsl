// dare_output: the whole output of DARE followed by Task Arithmetic for one chunk, straight from the raw model bytes,
// in one pass (host: LinearMergeKernel in src/engine/gpu/kernels.ts with this shader and a drop; twin:
// reference/linearMerge.ts dareOutputRef):
//   tau_t = decode(model t) - theta0                                   (decode_stack)
//   c_t   = rng_uniform(key_t, element_offset + j) < p ? +0 : tau_t * scale (tau_t when scale is 1)   (dare_drop)
//   delta = sum_t coeff_t * c_t                                         (combine: f32 from +0 in model order)
//   out   = encode(theta0 + delta)                                     (pack_add)
// bit for bit, plus linear_merge's per-thread partial sums of squares of theta0, each (undropped) tau_t and delta.
// key_t = rngKey(seed, t, stringId(tensor)) and element_offset (the chunk's first element in its tensor) come from the
// host per chunk, so the mask is dare_drop's whatever the chunking.
//
// Pipeline constants: BASE_DTYPE, MODEL_DTYPE, OUT_DTYPE, NORMS, SAME_COEFF as linear_merge; SCALE (kept entries are
// multiplied by params.scale; false when scale is 1, which leaves them untouched as dare_drop does).
// Bindings (group 0): as linear_merge (declared in _linear_io.wgsl), whose Params also carry this kernel's
//   element_offset, p: f32, scale: f32, and keys: array<vec4<u32>, MAX/4> (model t's key at keys[t / 4][t % 4]).
// Dispatch: as linear_merge.

// uses: _raw_block
// uses: _linear_io
// uses: _coeffs
// uses: _fused_out

override SCALE: bool = true;

// Model r's RNG key (selects, not a dynamic component: see _coeffs.wgsl).
fn key_of(r: u32) -> u32 {
  let v = params.keys[r >> 2u];
  let j = r & 3u;
  return select(select(v.z, v.w, j == 3u), select(v.x, v.y, j == 1u), j < 2u);
}

// One quad of model r's contribution: dropped lanes +0, kept ones scaled.
fn dropped(tau: vec4<f32>, key: u32, index: vec4<u32>) -> vec4<f32> {
  let kept = select(tau, tau * params.scale, SCALE);
  return select(kept, vec4<f32>(0.0), rng_uniform4(key, index) < vec4<f32>(params.p));
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
  let index = vec4<u32>(params.element_offset + 16u * k) + vec4<u32>(0u, 1u, 2u, 3u);
  var acc = F4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var t = 0u; t < params.tasks; t++) {
    let tau = tau_block(t, k, theta);
    let coeff = coeff_of(t, first);
    let key = key_of(t);
    acc.a += unfused4(coeff * dropped(tau.a, key, index), zero);
    acc.b += unfused4(coeff * dropped(tau.b, key, index + vec4<u32>(4u)), zero);
    acc.c += unfused4(coeff * dropped(tau.c, key, index + vec4<u32>(8u)), zero);
    acc.d += unfused4(coeff * dropped(tau.d, key, index + vec4<u32>(12u)), zero);
    if (NORMS) {
      partials[(t + 1u) * threads + k] = sum_sq(tau);
    }
  }
  let merged = F4(theta.a + acc.a, theta.b + acc.b, theta.c + acc.c, theta.d + acc.d);
  store_block(k, merged);
  if (NORMS) {
    partials[k] = sum_sq(theta);
    partials[(params.tasks + 1u) * threads + k] = sum_sq(acc);
  }
}
