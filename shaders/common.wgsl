// common.wgsl: helpers prepended to every kernel by src/engine/gpu/shaders.ts (after the generated constants).
//
// - workgroup_index / flat_index: the linear workgroup / element index of a 1-D kernel dispatched as a 2-D
//   grid. Large tensors need more than maxComputeWorkgroupsPerDimension (65535) workgroups, so the host
//   spreads them over x and y (src/engine/gpu/dispatch.ts) and each kernel compares the index against its
//   element count.
// - pcg_hash / rng_u32 / rng_uniform: the counter-based RNG, bit for bit the same as src/engine/rng.ts.
// - raw_word_index / decode_raw: read element j of raw model bytes uploaded as u32 words (little-endian; an
//   F16/BF16 element is the low half of word j/2 for even j, the high half for odd j). Decoding is pure bit
//   manipulation because f16 shader types are optional (SwiftShader has none).
// - unfused: keeps a product from being fused into a following add, so sums round as the CPU twins round.
// - f32_to_f16_bits / f32_to_bf16_bits / f32_bits_canonical: encode with round-to-nearest-even, overflow to
//   infinity and every NaN as the positive quiet NaN, bit for bit the same as src/engine/reference/kernels.ts.
//   They work on the f32's bits in integer arithmetic, so no device rounding mode or subnormal flushing
//   can change the result.

// Linear index of this workgroup in a 2-D grid of workgroups.
fn workgroup_index(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.y * nwg.x + wg.x;
}

fn flat_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return workgroup_index(wg, nwg) * WORKGROUP_SIZE + lid;
}

// Elements [x, y) of block `block` of a row of `numel` elements, blocks of REDUCTION_BLOCK consecutive elements: the
// span one thread of a reduction kernel (row_stats, sum_squares, gram, sign_stats, topk_energy) adds up, a quad per step.
fn block_span(block: u32, numel: u32) -> vec2<u32> {
  let first = block * REDUCTION_BLOCK;
  return vec2<u32>(first, min(numel, first + REDUCTION_BLOCK));
}

// Which of the four elements first .. first + 3 lie below `end` (the live lanes of a quad, the last one partial).
fn lanes_below(first: u32, end: u32) -> vec4<bool> {
  return vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(end);
}

// A reduction thread's f32 total of its four running sums (element i in sum i % 4): (s0 + s1) + (s2 + s3), the order
// the twins add in (reference/mergeReductions.ts blockSumF32Lanes).
fn lane_total(s: vec4<f32>) -> f32 {
  return (s.x + s.y) + (s.z + s.w);
}

fn pcg_hash(input: u32) -> u32 {
  let state = input * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn rng_u32(key: u32, index: u32) -> u32 {
  return pcg_hash(pcg_hash(index) ^ key);
}

// Uniform in [0, 1) with 24 random bits, exactly representable in f32.
fn rng_uniform(key: u32, index: u32) -> f32 {
  return f32(rng_u32(key, index) >> 8u) * 5.9604644775390625e-8;
}

// rng_uniform of four indices at once (the same values: pcg_hash on each lane).
fn pcg_hash4(input: vec4<u32>) -> vec4<u32> {
  let state = input * 747796405u + vec4<u32>(2891336453u);
  let word = ((state >> ((state >> vec4<u32>(28u)) + vec4<u32>(4u))) ^ state) * 277803737u;
  return (word >> vec4<u32>(22u)) ^ word;
}

fn rng_uniform4(key: u32, index: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(pcg_hash4(pcg_hash4(index) ^ vec4<u32>(key)) >> vec4<u32>(8u)) * 5.9604644775390625e-8;
}

// ---- exact f32 rounding ----

// x as a separately rounded f32. WGSL lets compilers contract a * b + c into one fused multiply-add, which
// skips the product's rounding (NVIDIA's Vulkan compiler does; SwiftShader does not), so results would differ
// between devices and from the CPU twin. XOR-ing the product's bits with `zero`, a uniform the host sets to 0,
// hides from the compiler that the value is a product, so the product is rounded to f32 on every device.
fn unfused(x: f32, zero: u32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ zero);
}

// ---- raw element decoding ----

// Index of the u32 word that holds element j of a raw tensor in encoding `dtype`.
fn raw_word_index(j: u32, dtype: u32) -> u32 {
  if (dtype == DTYPE_F32) {
    return j;
  }
  return j >> 1u;
}

// Element j's 16 bits inside its word: the low half for even j, the high half for odd j.
fn half_of(word: u32, j: u32) -> u32 {
  return (word >> ((j & 1u) * 16u)) & 0xffffu;
}

// Exact f32 value of an f16 bit pattern. Infinities keep their sign; NaN payloads are carried over.
fn f16_bits_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let exp = (h >> 10u) & 0x1fu;
  let mant = h & 0x3ffu;
  if (exp == 0x1fu) {
    return bitcast<f32>(sign | 0x7f800000u | (mant << 13u));
  }
  if (exp == 0u) {
    // Zero or subnormal: mant * 2^-24 is exact and a normal f32 (or +0), so flushing cannot touch it.
    return bitcast<f32>(sign | bitcast<u32>(f32(mant) * 5.9604644775390625e-8));
  }
  // Rebias the exponent from 15 to 127.
  return bitcast<f32>(sign | ((exp + 112u) << 23u) | (mant << 13u));
}

// Element j of a raw tensor, given the word raw[raw_word_index(j, dtype)].
fn decode_raw(word: u32, j: u32, dtype: u32) -> f32 {
  if (dtype == DTYPE_F16) {
    return f16_bits_to_f32(half_of(word, j));
  }
  if (dtype == DTYPE_BF16) {
    return bitcast<f32>(half_of(word, j) << 16u);
  }
  return bitcast<f32>(word);
}

// ---- encoding with round-to-nearest-even ----

const F32_QUIET_NAN: u32 = 0x7fc00000u;
const F16_QUIET_NAN: u32 = 0x7e00u;
const BF16_QUIET_NAN: u32 = 0x7fc0u;

fn is_nan_bits(bits: u32) -> bool {
  return (bits & 0x7fffffffu) > 0x7f800000u;
}

// v / 2^shift rounded to nearest, ties to even (1 <= shift <= 31).
fn shift_rne(v: u32, shift: u32) -> u32 {
  let q = v >> shift;
  let rest = v & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  return q + select(0u, 1u, rest > half || (rest == half && (q & 1u) == 1u));
}

// Bits of x with every NaN replaced by the positive quiet NaN (NaN sign and payload differ between devices).
fn f32_bits_canonical(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  return select(bits, F32_QUIET_NAN, is_nan_bits(bits));
}

fn f32_to_bf16_bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  if (is_nan_bits(bits)) {
    return BF16_QUIET_NAN;
  }
  // A carry out of the mantissa bumps the exponent; the largest finite values round up to infinity.
  return shift_rne(bits, 16u);
}

fn f32_to_f16_bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let sign = (bits >> 16u) & 0x8000u;
  let mag = bits & 0x7fffffffu;
  if (mag > 0x7f800000u) {
    return F16_QUIET_NAN;
  }
  if (mag >= 0x477ff000u) {
    // |x| >= 65520, halfway between the largest f16 (65504) and 2^16: ties to even give infinity.
    return sign | 0x7c00u;
  }
  if (mag >= 0x38800000u) {
    // Normal f16 (|x| >= 2^-14): round off 13 mantissa bits, then rebias the exponent from 127 to 15.
    return sign | (shift_rne(mag, 13u) - (112u << 10u));
  }
  if (mag <= 0x33000000u) {
    // |x| <= 2^-25, half the smallest subnormal: rounds to zero (the tie goes to the even 0).
    return sign;
  }
  // Subnormal f16 in units of 2^-24: the 24-bit significand times 2^(exp - 126), exp in 102..112.
  let significand = (mag & 0x7fffffu) | 0x800000u;
  return sign | shift_rne(significand, 126u - (mag >> 23u));
}

// ---- four elements at a time (vec4 loads of raw words) ----

// unfused for four products at once.
fn unfused4(x: vec4<f32>, zero: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>(bitcast<vec4<u32>>(x) ^ vec4<u32>(zero));
}

// +0 + x, as a sum started at +0 adds its first term (so -0 becomes +0). The +0 comes from the uniform `zero`: a
// shader compiler may fold a constant 0.0 + x to x (SwiftShader's does), which would keep a -0.
fn from_zero4(x: vec4<f32>, zero: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<f32>(zero)) + x;
}

// Index, within a raw tensor read as vec4<u32>, of the vec4 that holds elements 4g .. 4g+3: an F32 vec4 holds
// four elements, an F16/BF16 vec4 eight (elements 4g.. are its xy words for even g, its zw words for odd g).
fn raw_vec4_index(g: u32, dtype: u32) -> u32 {
  if (dtype == DTYPE_F32) {
    return g;
  }
  return g >> 1u;
}

// Elements 4g .. 4g+3 of a raw tensor, exactly, given the vec4 v = raw[raw_vec4_index(g, dtype)].
fn decode_raw4(v: vec4<u32>, g: u32, dtype: u32) -> vec4<f32> {
  if (dtype == DTYPE_F32) {
    return bitcast<vec4<f32>>(v);
  }
  let w = select(v.xy, v.zw, (g & 1u) == 1u);
  let h = vec4<u32>(w.x & 0xffffu, w.x >> 16u, w.y & 0xffffu, w.y >> 16u);
  if (dtype == DTYPE_BF16) {
    return bitcast<vec4<f32>>(h << vec4<u32>(16u));
  }
  return vec4<f32>(f16_bits_to_f32(h.x), f16_bits_to_f32(h.y), f16_bits_to_f32(h.z), f16_bits_to_f32(h.w));
}

// ---- encoding four or eight results (vec4 stores of raw words) ----

// Bits of x with every NaN replaced by the positive quiet NaN (tested on the bits: WGSL may assume x == x).
fn canonical4(x: vec4<f32>) -> vec4<u32> {
  let bits = bitcast<vec4<u32>>(x);
  return select(bits, vec4<u32>(F32_QUIET_NAN), (bits & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u));
}

fn encode16(x: f32, dtype: u32) -> u32 {
  if (dtype == DTYPE_F16) {
    return f32_to_f16_bits(x);
  }
  return f32_to_bf16_bits(x);
}

// Eight values as four words of 16-bit pairs in encoding `dtype` (F16 or BF16).
fn encode16x8(x: vec4<f32>, y: vec4<f32>, dtype: u32) -> vec4<u32> {
  return vec4<u32>(
    encode16(x.x, dtype) | (encode16(x.y, dtype) << 16u),
    encode16(x.z, dtype) | (encode16(x.w, dtype) << 16u),
    encode16(y.x, dtype) | (encode16(y.y, dtype) << 16u),
    encode16(y.z, dtype) | (encode16(y.w, dtype) << 16u),
  );
}

// ---- TIES sign election on four columns (ties_merge, ties_output; twin: reference/mergeKernels.ts) ----

const TIES_MAG: u32 = 0x7fffffffu;
const TIES_INF_BITS: u32 = 0x7f800000u;
// A gamma no entry can match (a NaN sum under the majority rule).
const TIES_NO_SIGN: i32 = 2;

// x as a TIES entry after the trim: x where its magnitude bits reach the row's threshold bits, else +0.
fn ties_trim4(bits: vec4<u32>, threshold: u32) -> vec4<u32> {
  return select(vec4<u32>(0u), bits, (bits & vec4<u32>(TIES_MAG)) >= vec4<u32>(threshold));
}

fn ties_sign4(bits: vec4<u32>) -> vec4<i32> {
  return select(vec4<i32>(1), vec4<i32>(-1), (bits >> vec4<u32>(31u)) == vec4<u32>(1u));
}

// The elected sign of each column from its f32 sum: its sign; a zero sum gives +1 under the "plus" rule, `majority`
// otherwise; a NaN sum gives -1 under "plus", no sign otherwise.
fn ties_elect4(s: vec4<f32>, plus: bool, majority: i32) -> vec4<i32> {
  let bits = bitcast<vec4<u32>>(s);
  let mag = bits & vec4<u32>(TIES_MAG);
  let on_nan = vec4<i32>(select(TIES_NO_SIGN, -1, plus));
  let on_zero = vec4<i32>(select(majority, 1, plus));
  return select(select(ties_sign4(bits), on_zero, mag == vec4<u32>(0u)), on_nan, mag > vec4<u32>(TIES_INF_BITS));
}

// Whether entries take part in the disjoint merge: non-zero, not NaN, and of the elected sign.
fn ties_agrees4(bits: vec4<u32>, gamma: vec4<i32>) -> vec4<bool> {
  let mag = bits & vec4<u32>(TIES_MAG);
  return (mag != vec4<u32>(0u)) & (mag <= vec4<u32>(TIES_INF_BITS)) & (ties_sign4(bits) == gamma);
}
