// ties_output: the whole output of global TIES for one chunk, straight from the raw model bytes, in one pass
// (host: src/engine/gpu/tiesFused.ts; twin: reference/tiesFused.ts tiesOutputRef):
//   tau_r = decode(model r) - theta0          (decode_stack)
//   x_r   = trim(tau_r, thresholds[r])        (ties_merge: kept where the magnitude bits reach the threshold, else +0)
//   gamma = elected sign of sum_r x_r         (f32 from 0 in row order; a zero sum takes `majority`, a NaN sum none)
//   c_r   = disjoint merge of the agreeing x_r (MODE sum / mean / max, as ties_merge)
//   delta = sum_r coeff_r * c_r               (combine: f32, row order, products rounded on their own)
//   out   = encode(theta0 + delta)            (pack_add)
// With DROP (DARE then TIES) each tau_r first goes through dare_drop (_dare_drop.wgsl: +0 where dropped, kept entries
// times scale with SCALE), keyed by the block's tensor and element index from params.parts as in linear_merge.
// All with the f32 operations of those kernels in their order, so the result is bit for bit theirs, plus per-thread
// partial sums of squares of theta0, each untrimmed (and undropped) tau_r and delta for the report's norms (as
// linear_merge), and per-thread counts of the columns whose sum is > 0, < 0, and zero with a delta that may depend on
// `majority` ("tied"; SUM: the two sides' candidates differ, MEAN and MAX: a kept entry could agree). The first two are
// the exact tally behind the majority sign, so the host can merge with a provisional majority and redo the pass only if
// a tied column exists and the tally disagrees. Tied is decided from the walk's state at the end, not tracked per row:
// one more set of per-column flags live through the walk made the kernel about 15% slower on SwiftShader.
//
// Pipeline constants: BASE_DTYPE, MODEL_DTYPE, OUT_DTYPE (DTYPE_*), MODE (0 sum, 1 mean, 2 max), NORMS, FINITE (NORMS
// false: one flag per thread instead of the norm rows, 1.0 where the merged block or the trimmed column sums s hold a
// NaN or an infinity: the trim keeps every NaN and infinity, whose keys are at least a finite threshold's, and the
// disjoint merge may still drop them; with DROP also where the f32 sum of the undropped tau_r is, which the drop may
// lose), SAME_COEFF (every coefficient the same: read once, _coeffs.wgsl), DROP and SCALE (as linear_merge's). With
// neither NORMS nor FINITE, partials is not written (the counts neither).
// Bindings (group 0):
//   0  params      uniform { numel, tasks, threads, zero, model_first, model_stride, majority: i32, drop_parts,
//                            p, scale, drop_seed, pad, coeffs: array<vec4<f32>, MAX/4>,
//                            parts: array<vec4<u32>, MAX_DROP_PARTS> }   (zero is always 0, see `unfused`; the drop's
//                            fields are read only with DROP, scale only with SCALE)
//   1  inputs      storage, read        array<vec4<u32>>  raw bytes as linear_merge reads them
//   2  thresholds  storage, read        array<u32>        [tasks] magnitude bit patterns (0 keeps every entry)
//   3  recip       storage, read        array<f32>        [tasks + 1], recip[n] = round_f32(1 / n) (MODE mean)
//   4  out         storage, read_write  array<vec4<u32>>  encoded output, padded to whole blocks
//   5  partials    storage, read_write  array<f32>        [tasks + 5, threads]: theta0, each tau_r, delta, then the
//                                                         counts of columns elected +1, -1, and tied (FINITE:
//                                                         [4, threads], the flags, then the three counts)
// Dispatch: one thread per block of BLOCK = 16 consecutive elements (four column quads) on a 2-D grid; threads >=
// `threads` return. SUM and MAX read the rows once: the walk keeps both candidates, the sum (or the largest entry) of
// the positive and of the negative agreeing entries, and the elected sign picks one at the end. That equals combine's
// sum over all rows because the skipped terms are +-0 products and the running sum, started at +0, is never -0. MEAN
// needs the agreeing count before it scales, so it reads the rows a second time (the block's bytes still in cache).
// The four quads are spelled out (structs of four vec4s, never arrays indexed in a loop): a CPU-emulated device keeps
// them in registers then, where a private array indexed in a loop went to memory and ran several times slower.

// uses: _raw_block
// uses: _coeffs
// uses: _fused_out
// uses: _dare_drop

override BASE_DTYPE: u32 = DTYPE_F32;
override MODEL_DTYPE: u32 = DTYPE_F32;
override OUT_DTYPE: u32 = DTYPE_F32;
override MODE: u32 = 0u;
override NORMS: bool = true;
override FINITE: bool = false;
override SAME_COEFF: bool = false;
override DROP: bool = false;
override SCALE: bool = true;

const MODE_MEAN: u32 = 1u;
const MODE_MAX: u32 = 2u;

struct Params {
  numel: u32,
  tasks: u32,
  threads: u32,
  zero: u32,
  model_first: u32,
  model_stride: u32,
  majority: i32,
  drop_parts: u32,
  p: f32,
  scale: f32,
  drop_seed: u32,
  pad: u32,
  coeffs: array<vec4<f32>, MAX_COEFF_VEC4S>,
  parts: array<vec4<u32>, MAX_DROP_PARTS>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inputs: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> thresholds: array<u32>;
@group(0) @binding(3) var<storage, read> recip: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;


fn trim_block(x: F4, threshold: u32) -> U4 {
  return U4(ties_trim4(bitcast<vec4<u32>>(x.a), threshold), ties_trim4(bitcast<vec4<u32>>(x.b), threshold), ties_trim4(bitcast<vec4<u32>>(x.c), threshold), ties_trim4(bitcast<vec4<u32>>(x.d), threshold));
}

fn ones(b: vec4<bool>) -> vec4<u32> {
  return select(vec4<u32>(0u), vec4<u32>(1u), b);
}

// A quad's trimmed entries that can agree with +1 and with -1 (kept, non-zero, not NaN, by sign bit): bits in
// [lo, INF] or in [SIGN | lo, SIGN | INF] with lo = max(threshold, 1), each one unsigned range test (see `Agree`).
struct Sides { pos: vec4<bool>, neg: vec4<bool> }
struct Agree { lo: u32, span: u32 }
fn agree_of(threshold: u32) -> Agree {
  let lo = max(threshold, 1u);
  return Agree(lo, select(0u, TIES_INF_BITS - lo + 1u, lo <= TIES_INF_BITS));
}
fn sides(bits: vec4<u32>, g: Agree) -> Sides {
  let span = vec4<u32>(g.span);
  return Sides(bits - vec4<u32>(g.lo) < span, bits - vec4<u32>(g.lo | 0x80000000u) < span);
}

// The candidate on each side, picked by the elected sign (no sign, or 0: nothing agrees, +0).
fn pick(gamma: vec4<i32>, pos: vec4<f32>, neg: vec4<f32>) -> vec4<f32> {
  return select(select(vec4<f32>(0.0), neg, gamma == vec4<i32>(-1)), pos, gamma == vec4<i32>(1));
}

// SUM: adds coeff * x to the side x agrees with.
struct Pair { pos: vec4<f32>, neg: vec4<f32> }
fn add_sides(acc: Pair, x: vec4<u32>, sd: Sides, coeff: f32, zero: u32) -> Pair {
  let term = unfused4(coeff * bitcast<vec4<f32>>(x), zero);
  return Pair(acc.pos + select(vec4<f32>(0.0), term, sd.pos), acc.neg + select(vec4<f32>(0.0), term, sd.neg));
}

// MAX: per side, the first row of strictly largest magnitude, as its coefficient * entry (rounded on its own).
struct Best { pos_mag: vec4<u32>, neg_mag: vec4<u32>, pos: vec4<f32>, neg: vec4<f32> }
fn keep_best(b: Best, x: vec4<u32>, sd: Sides, coeff: f32, zero: u32) -> Best {
  let mag = x & vec4<u32>(TIES_MAG);
  let term = unfused4(coeff * bitcast<vec4<f32>>(x), zero);
  // A magnitude of 0 marks an empty side: every agreeing entry is larger.
  let up = sd.pos & (mag > b.pos_mag);
  let down = sd.neg & (mag > b.neg_mag);
  return Best(select(b.pos_mag, mag, up), select(b.neg_mag, mag, down), select(b.pos, term, up), select(b.neg, term, down));
}

// MEAN's walk 2 for one quad, set up once per thread from walk 1: `side` is the sign bit of the elected side (0 for
// +1, the sign bit for -1), `live` whether the column elected +1 or -1, `factor` = recip[n] and `many` = (n >= 2)
// for its n agreeing entries.
struct MeanQuad { side: vec4<u32>, live: vec4<bool>, many: vec4<bool>, factor: vec4<f32> }
fn mean_quad(gamma: vec4<i32>, np: vec4<u32>, nn: vec4<u32>) -> MeanQuad {
  let n = select(nn, np, gamma == vec4<i32>(1));
  let side = select(vec4<u32>(0u), vec4<u32>(0x80000000u), gamma == vec4<i32>(-1));
  return MeanQuad(side, (gamma == vec4<i32>(1)) | (gamma == vec4<i32>(-1)), n > vec4<u32>(1u), recips(n));
}

// MEAN: coeff * (tau scaled by 1/n where n >= 2 entries agree), where tau agrees: kept by the trim, non-zero, not NaN
// and of the elected sign, which is one range test on the untrimmed bits (as `sides`), whose bits are the trimmed
// entry's wherever it agrees.
fn mean_term(tau: vec4<f32>, q: MeanQuad, g: Agree, coeff: f32, zero: u32) -> vec4<f32> {
  let bits = bitcast<vec4<u32>>(tau);
  let agrees = q.live & ((bits - (vec4<u32>(g.lo) | q.side)) < vec4<u32>(g.span));
  let kept = select(bits, bitcast<vec4<u32>>(tau * q.factor), q.many);
  return unfused4(coeff * bitcast<vec4<f32>>(select(vec4<u32>(0u), kept, agrees)), zero);
}

// tau_r of block k after the drop (with DROP; `index` from drop_index, `tensor` the block's stringId).
fn dropped_block(tau: F4, r: u32, tensor: u32, index: vec4<u32>) -> F4 {
  let key = key_of(r, tensor);
  let four = vec4<u32>(4u);
  return F4(drop4(tau.a, key, index), drop4(tau.b, key, index + four), drop4(tau.c, key, index + 2u * four), drop4(tau.d, key, index + 3u * four));
}

// recip[n] of a quad's agreeing counts, read once per thread rather than once per row: four lookups per row cost
// as much as the row's own loads on a CPU-emulated device.
fn recips(n: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(recip[n.x], recip[n.y], recip[n.z], recip[n.w]);
}

fn nonzero(x: vec4<u32>) -> vec4<bool> {
  return x != vec4<u32>(0u);
}

// SUM: whether a quad's two candidates differ (bit for bit), i.e. whether the elected sign changes its delta.
fn differ(p: Pair) -> vec4<bool> {
  return bitcast<vec4<u32>>(p.pos) != bitcast<vec4<u32>>(p.neg);
}

// Columns of a quad whose sum elects +1, -1, and those with a zero sum whose delta may depend on the sign (tied).
fn tally(sum: vec4<f32>, open: vec4<bool>) -> vec3<u32> {
  let sb = bitcast<vec4<u32>>(sum);
  let mag = sb & vec4<u32>(TIES_MAG);
  let counted = (mag != vec4<u32>(0u)) & (mag <= vec4<u32>(TIES_INF_BITS));
  let neg = (sb >> vec4<u32>(31u)) == vec4<u32>(1u);
  let tied = (mag == vec4<u32>(0u)) & open;
  let one = vec4<u32>(1u);
  return vec3<u32>(dot(ones(counted & !neg), one), dot(ones(counted & neg), one), dot(ones(tied), one));
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
  let tasks = params.tasks;
  let zero = params.zero;
  let first = first_coeff();
  let theta = load_block(0u, k, BASE_DTYPE);
  // With DROP: the block's tensor and the indices of its elements in that tensor.
  var part = vec4<u32>(0u);
  if (DROP) {
    part = drop_part(k);
  }
  let index = drop_index(part, k);
  // Walk 1: the trimmed column sums and the untrimmed norms; SUM and MAX also their candidates per side; MEAN the
  // agreeing counts per side.
  var s = F4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  let z4 = vec4<f32>(0.0);
  let u0 = vec4<u32>(0u);
  var sa = Pair(z4, z4);
  var sb = Pair(z4, z4);
  var sc = Pair(z4, z4);
  var sd = Pair(z4, z4);
  var ba = Best(u0, u0, z4, z4);
  var bb = Best(u0, u0, z4, z4);
  var bc = Best(u0, u0, z4, z4);
  var bd = Best(u0, u0, z4, z4);
  var np = U4(u0, u0, u0, u0);
  var nn = U4(u0, u0, u0, u0);
  // With DROP and FINITE: the sum of the undropped task vectors, which a dropped NaN or infinity still reaches.
  var undropped = F4(z4, z4, z4, z4);
  for (var r = 0u; r < tasks; r++) {
    var tau = tau_block(r, k, theta);
    if (NORMS) {
      partials[(r + 1u) * threads + k] = sum_sq(tau);
    }
    if (DROP) {
      if (FINITE) {
        undropped = F4(undropped.a + tau.a, undropped.b + tau.b, undropped.c + tau.c, undropped.d + tau.d);
      }
      tau = dropped_block(tau, r, part.z, index);
    }
    let threshold = thresholds[r];
    let x = trim_block(tau, threshold);
    s.a += bitcast<vec4<f32>>(x.a);
    s.b += bitcast<vec4<f32>>(x.b);
    s.c += bitcast<vec4<f32>>(x.c);
    s.d += bitcast<vec4<f32>>(x.d);
    // Which entries can agree with +1 / -1 (every merge rule).
    let g = agree_of(threshold);
    let qa = sides(x.a, g);
    let qb = sides(x.b, g);
    let qc = sides(x.c, g);
    let qd = sides(x.d, g);
    let coeff = coeff_of(r, first);
    if (MODE == MODE_MAX) {
      ba = keep_best(ba, x.a, qa, coeff, zero);
      bb = keep_best(bb, x.b, qb, coeff, zero);
      bc = keep_best(bc, x.c, qc, coeff, zero);
      bd = keep_best(bd, x.d, qd, coeff, zero);
    } else if (MODE == MODE_MEAN) {
      np = U4(np.a + ones(qa.pos), np.b + ones(qb.pos), np.c + ones(qc.pos), np.d + ones(qd.pos));
      nn = U4(nn.a + ones(qa.neg), nn.b + ones(qb.neg), nn.c + ones(qc.neg), nn.d + ones(qd.neg));
    } else {
      sa = add_sides(sa, x.a, qa, coeff, zero);
      sb = add_sides(sb, x.b, qb, coeff, zero);
      sc = add_sides(sc, x.c, qc, coeff, zero);
      sd = add_sides(sd, x.d, qd, coeff, zero);
    }
  }
  let maj = params.majority;
  let gamma = I4(ties_elect4(s.a, false, maj), ties_elect4(s.b, false, maj), ties_elect4(s.c, false, maj), ties_elect4(s.d, false, maj));
  var acc: F4;
  if (MODE == MODE_MAX) {
    // combine adds the one kept product to +0 (so a -0 product gives +0).
    acc = F4(from_zero4(pick(gamma.a, ba.pos, ba.neg), zero), from_zero4(pick(gamma.b, bb.pos, bb.neg), zero), from_zero4(pick(gamma.c, bc.pos, bc.neg), zero), from_zero4(pick(gamma.d, bd.pos, bd.neg), zero));
  } else if (MODE == MODE_MEAN) {
    // Walk 2: the scaled entries of the elected side, in row order.
    let qa = mean_quad(gamma.a, np.a, nn.a);
    let qb = mean_quad(gamma.b, np.b, nn.b);
    let qc = mean_quad(gamma.c, np.c, nn.c);
    let qd = mean_quad(gamma.d, np.d, nn.d);
    acc = F4(z4, z4, z4, z4);
    for (var r = 0u; r < tasks; r++) {
      let coeff = coeff_of(r, first);
      let g = agree_of(thresholds[r]);
      var tau = tau_block(r, k, theta);
      if (DROP) {
        tau = dropped_block(tau, r, part.z, index);
      }
      acc.a += mean_term(tau.a, qa, g, coeff, zero);
      acc.b += mean_term(tau.b, qb, g, coeff, zero);
      acc.c += mean_term(tau.c, qc, g, coeff, zero);
      acc.d += mean_term(tau.d, qd, g, coeff, zero);
    }
  } else {
    acc = F4(pick(gamma.a, sa.pos, sa.neg), pick(gamma.b, sb.pos, sb.neg), pick(gamma.c, sc.pos, sc.neg), pick(gamma.d, sd.pos, sd.neg));
  }
  let merged = F4(theta.a + acc.a, theta.b + acc.b, theta.c + acc.c, theta.d + acc.d);
  store_block(k, merged);
  if (NORMS) {
    partials[k] = sum_sq(theta);
    partials[(tasks + 1u) * threads + k] = sum_sq(acc);
  }
  if (FINITE) {
    partials[k] = select(0.0, 1.0, nonfinite_block(merged) || nonfinite_block(s) || (DROP && nonfinite_block(undropped)));
  }
  if (NORMS || FINITE) {
    // The counts follow the norm rows, or the flags.
    let extra = select(1u, tasks + 2u, NORMS);
    // Columns whose delta may depend on the elected sign: SUM's two candidates differ; MEAN and MAX have an agreeing
    // entry (a count, or a largest magnitude, on either side).
    var open: B4;
    if (MODE == MODE_MAX) {
      open = B4(nonzero(ba.pos_mag | ba.neg_mag), nonzero(bb.pos_mag | bb.neg_mag), nonzero(bc.pos_mag | bc.neg_mag), nonzero(bd.pos_mag | bd.neg_mag));
    } else if (MODE == MODE_MEAN) {
      open = B4(nonzero(np.a | nn.a), nonzero(np.b | nn.b), nonzero(np.c | nn.c), nonzero(np.d | nn.d));
    } else {
      open = B4(differ(sa), differ(sb), differ(sc), differ(sd));
    }
    let t = tally(s.a, open.a) + tally(s.b, open.b) + tally(s.c, open.c) + tally(s.d, open.d);
    partials[extra * threads + k] = f32(t.x);
    partials[(extra + 1u) * threads + k] = f32(t.y);
    partials[(extra + 2u) * threads + k] = f32(t.z);
  }
}
