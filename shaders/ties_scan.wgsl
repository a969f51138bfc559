// ties_scan: global TIES's statistics pass over one chunk of raw model bytes (host: src/engine/gpu/tiesFused.ts,
// TiesScan; twin: reference/tiesFused.ts tiesScanRef). With tau_r = decode(model r) - theta0 (f32, as decode_stack)
// and key = bits(tau) & 0x7fffffff, each task r has a bracket [lo_r, above_r) of keys that should hold its trim
// threshold (found from a sample by the host). The pass
//   - counts, per task, the keys >= above_r (kept whatever the threshold in the bracket);
//   - lists the keys inside the bracket (the host sorts these few to find the exact threshold at a rank);
//   - elects the sign of every column whose entries all lie outside their brackets (its trim is then known: kept
//     above, dropped below): s = sum over rows of (key >= above_r ? tau : +0) in f32 from 0 in row order, as
//     trimmed_sign_sum sums, and counts the columns with s > 0 and s < 0 (+-0 and NaN count nothing). With empty
//     brackets (lo = above = the exact thresholds) these are the exact counts behind the majority sign.
// Per-thread counts are added to `acc`, which lives across the chunks of the pass (chunks run in queue order, so
// no two launches touch a slot at once). Listed keys go through atomic counters sharded by thread (shard = thread %
// TIES_SCAN_SHARDS, each with its own counter and region): one shared counter per task made the threads of a
// CPU-emulated device queue on it. A shard that would overflow keeps counting and writes nothing more, so the host
// sees the overflow.
//
// Pipeline constants: BASE_DTYPE, MODEL_DTYPE   DTYPE_F32 / DTYPE_F16 / DTYPE_BF16 (every model in MODEL_DTYPE)
//                     SIGNS                     whether to elect signs (rows T and T + 1 of acc stay 0 otherwise):
//                                               a pass that only brackets thresholds skips the sums
//                     LIST                      whether to list the keys inside the brackets (counters and window
//                                               untouched otherwise): on a CPU-emulated adapter the host lists them
//                                               (merge/plans/tiesKeyLists.ts), and empty brackets list nothing
// Bindings (group 0):
//   0  params    uniform { numel, tasks, threads, acc_stride, model_first, model_stride, window_cap }
//   1  inputs    storage, read        array<vec4<u32>>     raw bytes as linear_merge reads them (theta0 from vec4 0,
//                                                          model r from model_first + r * model_stride, padded to
//                                                          whole BLOCK-element blocks)
//   2  bracket   storage, read        array<vec2<u32>>     [tasks]: (lo, above) keys
//   3  acc       storage, read_write  array<u32>           [tasks + 2, acc_stride]: row r keys >= above_r; row T
//                                                          columns elected +1; row T + 1 columns elected -1
//   4  counters  storage, read_write  array<atomic<u32>>   [tasks, SHARDS]: listed keys per task and shard
//   5  window    storage, read_write  array<u32>           [tasks, SHARDS, window_cap] listed keys
// Dispatch: one thread per block of BLOCK = 16 consecutive elements (`threads` = numel / BLOCK rounded up, <=
// acc_stride) on a 2-D grid (flat_index). A thread walks the rows once, four quads of columns per row, keeping the
// quads' sums in registers (spelled out, as in ties_output: no arrays indexed in loops).

// uses: _raw_block

override BASE_DTYPE: u32 = DTYPE_F32;
override MODEL_DTYPE: u32 = DTYPE_F32;
override SIGNS: bool = true;
override LIST: bool = true;

struct Params {
  numel: u32,
  tasks: u32,
  threads: u32,
  acc_stride: u32,
  model_first: u32,
  model_stride: u32,
  window_cap: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inputs: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> bracket: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> acc: array<u32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> window: array<u32>;


fn count4(b: vec4<bool>) -> u32 {
  return dot(select(vec4<u32>(0u), vec4<u32>(1u), b), vec4<u32>(1u));
}

// Lists row r's keys inside its bracket (lanes `inside` of a quad) in shard `shard`.
fn list_keys(r: u32, shard: u32, key: vec4<u32>, inside: vec4<bool>) {
  let slot = r * TIES_SCAN_SHARDS + shard;
  for (var i = 0u; i < 4u; i++) {
    if (inside[i]) {
      let at = atomicAdd(&counters[slot], 1u);
      if (at < params.window_cap) {
        window[slot * params.window_cap + at] = key[i];
      }
    }
  }
}

// One quad of one row: counts its kept keys, lists the keys inside the bracket, adds the kept values to `sum`, marks
// open lanes in `open`; returns the kept count.
struct QuadScan { sum: vec4<f32>, open: vec4<bool>, kept: u32 }
fn scan_quad(r: u32, shard: u32, x: vec4<f32>, valid: vec4<bool>, b: vec2<u32>, sum: vec4<f32>, open: vec4<bool>) -> QuadScan {
  let bits = bitcast<vec4<u32>>(x);
  let key = bits & vec4<u32>(TIES_MAG);
  let kept = valid & (key >= vec4<u32>(b.y));
  let inside = valid & (key >= vec4<u32>(b.x)) & !kept;
  if (LIST && any(inside)) {
    list_keys(r, shard, key, inside);
  }
  if (!SIGNS) {
    return QuadScan(sum, open, count4(kept));
  }
  return QuadScan(sum + bitcast<vec4<f32>>(select(vec4<u32>(0u), bits, kept)), open | inside, count4(kept));
}

// The decided lanes' sign counts of one quad.
fn signs(sum: vec4<f32>, decided: vec4<bool>) -> vec2<u32> {
  let sb = bitcast<vec4<u32>>(sum);
  let mag = sb & vec4<u32>(TIES_MAG);
  let counted = decided & (mag != vec4<u32>(0u)) & (mag <= vec4<u32>(TIES_INF_BITS));
  let neg = (sb >> vec4<u32>(31u)) == vec4<u32>(1u);
  return vec2<u32>(count4(counted & !neg), count4(counted & neg));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  if (k >= params.threads) {
    return;
  }
  let tasks = params.tasks;
  let stride = params.acc_stride;
  let shard = k % TIES_SCAN_SHARDS;
  let theta = load_block(0u, k, BASE_DTYPE);
  let lane = vec4<u32>(16u * k) + vec4<u32>(0u, 1u, 2u, 3u);
  let n = vec4<u32>(params.numel);
  let valid = B4(lane < n, lane + vec4<u32>(4u) < n, lane + vec4<u32>(8u) < n, lane + vec4<u32>(12u) < n);
  var sum = F4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  var open = B4(vec4<bool>(false), vec4<bool>(false), vec4<bool>(false), vec4<bool>(false));
  for (var r = 0u; r < tasks; r++) {
    let b = bracket[r];
    let tau = tau_block(r, k, theta);
    let qa = scan_quad(r, shard, tau.a, valid.a, b, sum.a, open.a);
    let qb = scan_quad(r, shard, tau.b, valid.b, b, sum.b, open.b);
    let qc = scan_quad(r, shard, tau.c, valid.c, b, sum.c, open.c);
    let qd = scan_quad(r, shard, tau.d, valid.d, b, sum.d, open.d);
    sum = F4(qa.sum, qb.sum, qc.sum, qd.sum);
    open = B4(qa.open, qb.open, qc.open, qd.open);
    acc[r * stride + k] += qa.kept + qb.kept + qc.kept + qd.kept;
  }
  if (!SIGNS) {
    return;
  }
  let pn = signs(sum.a, valid.a & !open.a) + signs(sum.b, valid.b & !open.b) + signs(sum.c, valid.c & !open.c) + signs(sum.d, valid.d & !open.d);
  acc[tasks * stride + k] += pn.x;
  acc[(tasks + 1u) * stride + k] += pn.y;
}
