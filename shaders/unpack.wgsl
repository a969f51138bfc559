// unpack: raw model bytes -> f32 working tensor.   out[j] = decode(raw, j)
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, dtype: u32 }     dtype is DTYPE_F32 / DTYPE_F16 / DTYPE_BF16
//   1  raw     storage, read        array<u32>         the tensor's bytes as little-endian words (padded to 4 bytes);
//                                                      F16/BF16 element j is half (j & 1) of word j / 2
//   2  out     storage, read_write  array<f32>         numel elements
// Dispatch: one thread per element, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing. Decoding is bitwise (common.wgsl), so the f32 result is exact
// and NaN payloads pass through.

struct Params {
  numel: u32,
  dtype: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> raw: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = flat_index(wg, nwg, lid);
  if (j >= params.numel) {
    return;
  }
  out[j] = decode_raw(raw[raw_word_index(j, params.dtype)], j, params.dtype);
}
