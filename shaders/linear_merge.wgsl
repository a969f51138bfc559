// linear_merge: the whole output of a linear merge (Task Arithmetic, simple average, LiNeS on Task Arithmetic, Model
// Stock, SLERP) for one chunk, straight from the raw model bytes, in one pass:
//   tau_t = decode(model t) - theta0,   delta = sum_t coeff_t * c_t (+ base_coeff * theta0),   out = encode(theta0 + delta)
// with c_t = tau_t, or with DROP (DARE, then Task Arithmetic) dare_drop's
//   c_t = rng_uniform(key_t, element_offset + j) < p ? +0 : tau_t * scale   (tau_t itself when not SCALE)
// where key_t = rngKey(seed, t, stringId(tensor)), formed here from pcgHash(seed) (drop_seed) and the tensor's id, and
// element_offset + j is the element's index in its tensor, so the mask is dare_drop's whatever the chunking. A launch
// may cover several small tensors one after the other (each from a whole block): params.parts holds one record per
// tensor, (first thread, index of its first element in the tensor, stringId of its name, 0), in thread order, and a
// thread takes the last record whose first thread is not after its own. With MASKED (a merge whose contributions an
// earlier merge measured: src/engine/merge/keptBits.ts) instead
//   c_t = bit t of keep[j] ? tau_t * scale : +0   (tau_t itself when not SCALE)
// which is the contributions of Breadcrumbs, TIES with scope "tensor" (merge "sum" or "max"), DARE then TIES and Consensus
// then TIES (merge "sum" or "max"), bit for bit, where keep_bits took the bits from them. The f32 operations are those of unpack +
// task_vector + (dare_drop +) combine + pack_add in their order (so the result is bit for bit theirs; with BASE_TERM,
// combine's over the rows [tau_1 .. tau_T, theta0], SLERP's stack path), plus
// per-thread partial sums of squares of theta0, each (undropped) tau_t and delta for the report's norms.
// Twins: reference/linearMerge.ts linearMergeRef, dareOutputRef.
//
// The constants, Params and bindings below are declared in _linear_io.wgsl (shared with magmax_output), except DROP
// and SCALE; the drop itself is _dare_drop.wgsl's (shared with ties_output).
// Pipeline constants (the host builds one pipeline per combination, so no dtype test runs per element):
//   BASE_DTYPE, MODEL_DTYPE, OUT_DTYPE   DTYPE_F32 / DTYPE_F16 / DTYPE_BF16 (every model in MODEL_DTYPE)
//   NORMS                                whether to write the partials
//   FINITE                               (NORMS false) write one flag per thread instead: merged block k holds a
//                                        NaN or an infinity, or with DROP the sum of the undropped tau_t does
//                                        (_linear_io.wgsl)
//   SAME_COEFF                           every coefficient is the same (read once: _coeffs.wgsl)
//   DROP                                 apply DARE's drop (false: the plain linear merge, no RNG work at all)
//   MASKED                               keep only the entries whose bit is set in `keep` (not with DROP)
//   SCALE                                with DROP or MASKED, multiply kept entries by params.scale (false when scale is 1,
//                                        which leaves them untouched as dare_drop does)
//   BASE_TERM                            add params.base_coeff * theta0 to delta after the models (SLERP writes
//                                        s_a theta_a + s_b theta_b, whose weights need not add up to 1)
// Bindings (group 0):
//   0  params    uniform { numel, tasks, threads, zero, model_first, model_stride, drop_parts, p, scale, mask_k
//                (consensus_output's), base_coeff, out_stride (tall_output's), drop_seed, 3 x pad,
//                coeffs: array<vec4<f32>, MAX/4>, keys: array<vec4<u32>, MAX/4> (consensus_output's and
//                tall_output's), parts: array<vec4<u32>, MAX_DROP_PARTS> }
//                zero is always 0 (`unfused`); coeffs[t / 4][t % 4] is model t's coefficient; drop_parts (1 or more
//                records of parts), p and drop_seed are read only with DROP, scale with DROP or MASKED, base_coeff
//                only with BASE_TERM
//   1  inputs    storage, read        array<vec4<u32>>  raw bytes: theta0 from vec4 0, model t (0-based) from vec4
//                                                       model_first + t * model_stride; every segment is zero-padded
//                                                       to a whole number of BLOCK-element blocks
//   2  out       storage, read_write  array<vec4<u32>>  encoded output (F32 words, or F16/BF16 pairs per word), padded
//                                                       to whole blocks (the padding encodes theta0 = tau = 0, i.e. 0)
//   3  partials  storage, read_write  array<f32>        [tasks + 2, threads]: row 0 theta0, row 1 + t tau_t, last delta
//                                                       (FINITE: [1, threads], the flags)
//   4  keep      storage, read        array<vec4<u32>>  (read only with MASKED) one word per element, bit t for model
//                                                       t, whole blocks; any 16-byte buffer otherwise
// Dispatch: one thread per block of BLOCK = 16 consecutive elements, `threads` = numel / BLOCK rounded up, on a 2-D
// grid (flat_index); threads >= `threads` return. A thread keeps its block's theta0 and running sums in registers
// while it walks the tasks, so a tau_t partial is one store per thread and task. CPU-emulated devices run straight
// vec4 code like this near their copy bandwidth; per-element branches or barriers would cost several times more.

// uses: _raw_block
// uses: _linear_io
// uses: _coeffs
// uses: _fused_out
// uses: _dare_drop

override DROP: bool = false;
override MASKED: bool = false;
override SCALE: bool = true;
override BASE_TERM: bool = false;

@group(0) @binding(4) var<storage, read> keep: array<vec4<u32>>;

// One quad's contribution c_t: tau itself; with DROP dropped lanes +0 and kept ones scaled; with MASKED the lanes
// whose keep word has bit t set, scaled, and +0 elsewhere.
fn contribution(tau: vec4<f32>, key: u32, index: vec4<u32>, words: vec4<u32>, t: u32) -> vec4<f32> {
  if (!DROP && !MASKED) {
    return tau;
  }
  if (MASKED) {
    let kept = select(tau, tau * params.scale, SCALE);
    return select(vec4<f32>(0.0), kept, ((words >> vec4<u32>(t)) & vec4<u32>(1u)) == vec4<u32>(1u));
  }
  return drop4(tau, key, index);
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
  // With DROP: the block's tensor and the index of its first element in that tensor.
  var part = vec4<u32>(0u);
  if (DROP) {
    part = drop_part(k);
  }
  let index = drop_index(part, k);
  // With MASKED: the block's keep words, one per element.
  var kw = U4(vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u));
  if (MASKED) {
    kw = U4(keep[4u * k], keep[4u * k + 1u], keep[4u * k + 2u], keep[4u * k + 3u]);
  }
  var acc = F4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  // With DROP or MASKED and FINITE: the sum of the undropped task vectors, which a dropped NaN or infinity still reaches.
  var undropped = F4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var t = 0u; t < params.tasks; t++) {
    let tau = tau_block(t, k, theta);
    if ((DROP || MASKED) && FINITE) {
      undropped = F4(undropped.a + tau.a, undropped.b + tau.b, undropped.c + tau.c, undropped.d + tau.d);
    }
    let coeff = coeff_of(t, first);
    var key = 0u;
    if (DROP) {
      key = key_of(t, part.z);
    }
    acc.a += unfused4(coeff * contribution(tau.a, key, index, kw.a, t), zero);
    acc.b += unfused4(coeff * contribution(tau.b, key, index + vec4<u32>(4u), kw.b, t), zero);
    acc.c += unfused4(coeff * contribution(tau.c, key, index + vec4<u32>(8u), kw.c, t), zero);
    acc.d += unfused4(coeff * contribution(tau.d, key, index + vec4<u32>(12u), kw.d, t), zero);
    if (NORMS) {
      partials[(t + 1u) * threads + k] = sum_sq(tau);
    }
  }
  if (BASE_TERM) {
    // combine's last row: a product of theta0 never joins the sum without BASE_TERM (0 * inf would be NaN).
    let b = params.base_coeff;
    acc.a += unfused4(b * theta.a, zero);
    acc.b += unfused4(b * theta.b, zero);
    acc.c += unfused4(b * theta.c, zero);
    acc.d += unfused4(b * theta.d, zero);
  }
  let merged = F4(theta.a + acc.a, theta.b + acc.b, theta.c + acc.c, theta.d + acc.d);
  store_block(k, merged);
  if (NORMS) {
    partials[k] = sum_sq(theta);
    partials[(params.tasks + 1u) * threads + k] = sum_sq(acc);
  }
  if (FINITE) {
    partials[k] = select(0.0, 1.0, nonfinite_block(merged) || ((DROP || MASKED) && nonfinite_block(undropped)));
  }
}
