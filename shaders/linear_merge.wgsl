// linear_merge: the whole output of a linear merge (Task Arithmetic, simple average, LiNeS on Task Arithmetic) for
// one chunk, straight from the raw model bytes, in one pass:
//   tau_t = decode(model t) - theta0,   delta = sum_t coeff_t * tau_t,   out = encode(theta0 + delta)
// with the f32 operations of unpack + task_vector + combine + pack_add in their order (so the result is bit for bit
// theirs), plus per-thread partial sums of squares of theta0, each tau_t and delta for the report's norms.
//
// The constants, Params and bindings below are declared in _linear_io.wgsl (shared with magmax_output).
// Pipeline constants (the host builds one pipeline per combination, so no dtype test runs per element):
//   BASE_DTYPE, MODEL_DTYPE, OUT_DTYPE   DTYPE_F32 / DTYPE_F16 / DTYPE_BF16 (every model in MODEL_DTYPE)
//   NORMS                                whether to write the partials
//   SAME_COEFF                           every coefficient is the same (read once: _coeffs.wgsl)
// Bindings (group 0):
//   0  params    uniform { numel, tasks, threads, zero, model_first, model_stride, (dare_output's element_offset, p,
//                scale), three unused, coeffs: array<vec4<f32>, MAX/4>, (dare_output's keys) }
//                zero is always 0 (`unfused`); coeffs[t / 4][t % 4] is model t's coefficient
//   1  inputs    storage, read        array<vec4<u32>>  raw bytes: theta0 from vec4 0, model t (0-based) from vec4
//                                                       model_first + t * model_stride; every segment is zero-padded
//                                                       to a whole number of BLOCK-element blocks
//   2  out       storage, read_write  array<vec4<u32>>  encoded output (F32 words, or F16/BF16 pairs per word), padded
//                                                       to whole blocks (the padding encodes theta0 = tau = 0, i.e. 0)
//   3  partials  storage, read_write  array<f32>        [tasks + 2, threads]: row 0 theta0, row 1 + t tau_t, last delta
// Dispatch: one thread per block of BLOCK = 16 consecutive elements, `threads` = numel / BLOCK rounded up, on a 2-D
// grid (flat_index); threads >= `threads` return. A thread keeps its block's theta0 and running sums in registers
// while it walks the tasks, so a tau_t partial is one store per thread and task. CPU-emulated devices run straight
// vec4 code like this near their copy bandwidth; per-element branches or barriers would cost several times more.

// uses: _raw_block
// uses: _linear_io
// uses: _coeffs
// uses: _fused_out

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
  var acc = F4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var t = 0u; t < params.tasks; t++) {
    let tau = tau_block(t, k, theta);
    let coeff = coeff_of(t, first);
    acc.a += unfused4(coeff * tau.a, zero);
    acc.b += unfused4(coeff * tau.b, zero);
    acc.c += unfused4(coeff * tau.c, zero);
    acc.d += unfused4(coeff * tau.d, zero);
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
