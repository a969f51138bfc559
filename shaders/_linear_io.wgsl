// _linear_io.wgsl: a part, not a kernel (see _raw_block.wgsl for how parts are loaded). The interface of
// linear_merge, which magmax_output, consensus_output and tall_output share so that one host launcher
// (LinearMergeKernel in src/engine/gpu/linearMerge.ts) drives all four: their pipeline constants, uniform Params and
// bindings (documented in linear_merge.wgsl's header). drop_parts, p, scale, drop_seed and parts serve linear_merge's
// DARE drop (DROP), base_coeff its theta0 term (BASE_TERM); mask_k and keys (as f32 bits) consensus_output's masks, keys
// tall_output's, out_stride the vec4s from one of tall_output's outputs to the next (0 for the others).

override BASE_DTYPE: u32 = DTYPE_F32;
override MODEL_DTYPE: u32 = DTYPE_F32;
override OUT_DTYPE: u32 = DTYPE_F32;
override NORMS: bool = true;
// In place of the norms (NORMS false): partials[k] = 1.0 when block k of the merged values (theta0 + delta, f32,
// before encoding) holds a NaN or an infinity, else 0.0; one row of `threads`. A kernel whose masks may drop a
// task-vector entry also flags the block where the f32 sum of its task vectors (in model order, from +0) is not
// finite, so that every NaN or infinite task-vector value is seen (linear_merge with DROP, consensus_output).
override FINITE: bool = false;
override SAME_COEFF: bool = false;

struct Params {
  numel: u32,
  tasks: u32,
  threads: u32,
  zero: u32,
  model_first: u32,
  model_stride: u32,
  drop_parts: u32,
  p: f32,
  scale: f32,
  mask_k: u32,
  base_coeff: f32,
  out_stride: u32,
  drop_seed: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
  coeffs: array<vec4<f32>, MAX_COEFF_VEC4S>,
  keys: array<vec4<u32>, MAX_COEFF_VEC4S>,
  parts: array<vec4<u32>, MAX_DROP_PARTS>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inputs: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

// Model r's mask lambda, the f32 bits in params.keys (consensus_output, tall_output; selects, not a dynamic component:
// see _coeffs.wgsl).
fn mask_lambda_of(r: u32) -> f32 {
  let v = params.keys[r >> 2u];
  let j = r & 3u;
  return bitcast<f32>(select(select(v.z, v.w, j == 3u), select(v.x, v.y, j == 1u), j < 2u));
}

// TALL masks' rule on one quad (consensus_output, tall_output): task t keeps the weight where
// |tau_t| > lambda_t * |mtl - tau_t|.
fn tall_keeps(tau: vec4<f32>, mtl: vec4<f32>, lambda: f32) -> vec4<bool> {
  return abs(tau) > vec4<f32>(lambda) * abs(mtl - tau);
}

// The multi-task vector on block k: mtl = sum_t tau_t in f32 from +0 in model order (combine with coefficients 1),
// writing each tau_t's norm partial on the way (NORMS): the first read of the models in consensus_output and tall_output.
fn task_sum_block(k: u32, theta: F4) -> F4 {
  let z4 = vec4<f32>(0.0);
  var mtl = F4(z4, z4, z4, z4);
  for (var t = 0u; t < params.tasks; t++) {
    let tau = tau_block(t, k, theta);
    mtl.a += tau.a;
    mtl.b += tau.b;
    mtl.c += tau.c;
    mtl.d += tau.d;
    if (NORMS) {
      partials[(t + 1u) * params.threads + k] = sum_sq(tau);
    }
  }
  return mtl;
}
