// pack_add: add a delta to the base and encode the result for output.   value j = encode(base[j] + delta[j])
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, dtype: u32 }    output encoding DTYPE_F32 / DTYPE_F16 / DTYPE_BF16
//   1  base    storage, read        array<f32>       numel elements
//   2  delta   storage, read        array<f32>       numel elements
//   3  out     storage, read_write  array<u32>       little-endian output words: numel words for F32, or
//                                                    ceil(numel / 2) words for F16/BF16 (element j in half j & 1
//                                                    of word j / 2; the unused high half of an odd tail is 0)
// Dispatch: one thread per OUTPUT WORD (so no two threads write the same word), WORKGROUP_SIZE threads per
// workgroup, on a 2-D grid (flat_index).
// Bounds: threads past the last word do nothing; the high half of the last word is written only if it exists.
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = flat_index(wg, nwg, lid);
  if (params.dtype == DTYPE_F32) {
    if (w < params.numel) {
      out[w] = f32_bits_canonical(base[w] + delta[w]);
    }
    return;
  }
  let j = 2u * w;
  if (j >= params.numel) {
    return;
  }
  var word = encode16(base[j] + delta[j], params.dtype);
  if (j + 1u < params.numel) {
    word |= encode16(base[j + 1u] + delta[j + 1u], params.dtype) << 16u;
  }
  out[w] = word;
}
