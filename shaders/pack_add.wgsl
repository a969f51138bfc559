// pack_add: add a delta to the base and encode the result for output.   value j = encode(base[j] + delta[j])
//
// Pipeline constants: OUT_DTYPE   output encoding DTYPE_F32 / DTYPE_F16 / DTYPE_BF16 (one pipeline each: a
//                                 CPU-emulated device runs the code of both sides of a branch, masked, so a dtype
//                                 test per thread made the F32 pass pay for the 16-bit encoding)
// Bindings (group 0):
//   0  params  uniform { numel: u32 }
//   1  base    storage, read        array<vec4<f32>>   numel elements, bound in whole quads (bindQuads)
//   2  delta   storage, read        array<vec4<f32>>   numel elements, bound in whole quads
//   3  out     storage, read_write  array<vec4<u32>>   little-endian output words, bound in whole quads: numel words
//                                                      for F32, or ceil(numel / 2) words for F16/BF16 (element j in
//                                                      half j & 1 of word j / 2; the unused high half of an odd tail
//                                                      is 0)
// Dispatch: one thread per THREAD_ELEMENTS = 4 consecutive elements (4 output words for F32, 2 for F16/BF16, so no two
// threads write the same word), WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index). Four elements per
// thread, read as one quad of each input: CPU-emulated devices ran one word per thread several times slower, and one
// f32 per access about 4x slower than a quad.
// Bounds: output words past the elements keep their value; the high half of the last 16-bit word is written (as 0)
// only when it has no element.
// Rounding: one f32 add, then round-to-nearest-even in integer arithmetic (common.wgsl); overflow gives
// infinity and every NaN becomes the positive quiet NaN.

override OUT_DTYPE: u32 = DTYPE_F32;

struct Params {
  numel: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> base: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> delta: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<u32>>;


// Element i encoded in the low 16 bits (F16/BF16), or 0 past the end.
// Output word w (two 16-bit values) of the elements `sum` (4w - 4q .. of quad q), 0 for elements past numel.
fn half_pair(sum: vec4<f32>, j: u32, second: bool) -> u32 {
  let e = select(sum.xy, sum.zw, second);
  let i = j + select(0u, 2u, second);
  let lo = select(0u, encode16(e.x, OUT_DTYPE), i < params.numel);
  let hi = select(0u, encode16(e.y, OUT_DTYPE), i + 1u < params.numel);
  return lo | (hi << 16u);
}

const_assert THREAD_ELEMENTS == 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let q = flat_index(wg, nwg, lid);
  let j = THREAD_ELEMENTS * q;
  if (j >= params.numel) {
    return;
  }
  let sum = base[q] + delta[q];
  if (OUT_DTYPE == DTYPE_F32) {
    let live = lanes_below(j, params.numel);
    out[q] = select(out[q], canonical4(sum), live);
    return;
  }
  // Words 2q and 2q + 1: half of vec4 q / 2.
  let w = 2u * q;
  out[w / 4u][w % 4u] = half_pair(sum, j, false);
  if (j + 2u < params.numel) {
    out[w / 4u][w % 4u + 1u] = half_pair(sum, j, true);
  }
}
