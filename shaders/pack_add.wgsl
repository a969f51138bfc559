// pack_add: add a delta to the base and encode the result for output.   value j = encode(base[j] + delta[j])
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, dtype: u32 }    output encoding DTYPE_F32 / DTYPE_F16 / DTYPE_BF16
//   1  base    storage, read        array<f32>       numel elements
//   2  delta   storage, read        array<f32>       numel elements
//   3  out     storage, read_write  array<u32>       little-endian output words: numel words for F32, or
//                                                    ceil(numel / 2) words for F16/BF16 (element j in half j & 1
//                                                    of word j / 2; the unused high half of an odd tail is 0)
// Dispatch: one thread per THREAD_ELEMENTS = 4 consecutive elements (4 output words for F32, 2 for F16/BF16, so no two
// threads write the same word), WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index). Four elements per
// thread: CPU-emulated devices ran one word per thread several times slower.
// Bounds: elements past numel are not read; the high half of the last 16-bit word is written (as 0) only when it
// has no element.
// Rounding: one f32 add, then round-to-nearest-even in integer arithmetic (common.wgsl); overflow gives
// infinity and every NaN becomes the positive quiet NaN.

struct Params {
  numel: u32,
  dtype: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> base: array<f32>;
@group(0) @binding(2) var<storage, read> delta: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;


// Element i encoded in the low 16 bits (F16/BF16), or 0 past the end.
fn half_word(i: u32) -> u32 {
  if (i >= params.numel) {
    return 0u;
  }
  return encode16(base[i] + delta[i], params.dtype);
}

// The body below is written for 4 elements per thread.
const_assert THREAD_ELEMENTS == 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = THREAD_ELEMENTS * flat_index(wg, nwg, lid);
  if (j >= params.numel) {
    return;
  }
  let end = min(j + THREAD_ELEMENTS, params.numel);
  if (params.dtype == DTYPE_F32) {
    for (var i = j; i < end; i++) {
      out[i] = f32_bits_canonical(base[i] + delta[i]);
    }
    return;
  }
  out[j / 2u] = half_word(j) | (half_word(j + 1u) << 16u);
  if (j + 2u < params.numel) {
    out[j / 2u + 1u] = half_word(j + 2u) | (half_word(j + 3u) << 16u);
  }
}
