// _raw_block.wgsl: a part, not a kernel. The loader (src/engine/gpu/shaders.ts) puts it after common.wgsl in front of
// the kernels that read a chunk's raw model bytes in blocks of sixteen elements (a line `// uses: _raw_block`):
// linear_merge, magmax_output, ties_scan, ties_output. Such a kernel declares
//   `inputs: array<vec4<u32>>` (the raw segments, theta0 from vec4 0, model r from params.model_first +
//   r * params.model_stride, each padded to whole blocks), `params` with those two fields, and MODEL_DTYPE.

// Sixteen consecutive values (four quads) as floats, bits, counts or signs.
struct F4 { a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32> }
struct U4 { a: vec4<u32>, b: vec4<u32>, c: vec4<u32>, d: vec4<u32> }
struct I4 { a: vec4<i32>, b: vec4<i32>, c: vec4<i32>, d: vec4<i32> }
struct B4 { a: vec4<bool>, b: vec4<bool>, c: vec4<bool>, d: vec4<bool> }

// Elements 16k .. 16k+15 of the segment starting at vec4 `first`, in encoding `dtype`. A 16-bit vec4 holds eight
// elements: groups 4g.. in its xy words (even g) or zw words (odd g).
fn load_block(first: u32, k: u32, dtype: u32) -> F4 {
  if (dtype == DTYPE_F32) {
    let at = first + 4u * k;
    return F4(bitcast<vec4<f32>>(inputs[at]), bitcast<vec4<f32>>(inputs[at + 1u]), bitcast<vec4<f32>>(inputs[at + 2u]), bitcast<vec4<f32>>(inputs[at + 3u]));
  }
  let lo = inputs[first + 2u * k];
  let hi = inputs[first + 2u * k + 1u];
  return F4(decode_raw4(lo, 0u, dtype), decode_raw4(lo, 1u, dtype), decode_raw4(hi, 0u, dtype), decode_raw4(hi, 1u, dtype));
}

// Model r's task vector on block k: decode(model r) - theta0 (as decode_stack).
fn tau_block(r: u32, k: u32, theta: F4) -> F4 {
  let m = load_block(params.model_first + r * params.model_stride, k, MODEL_DTYPE);
  return F4(m.a - theta.a, m.b - theta.b, m.c - theta.c, m.d - theta.d);
}

fn sum_sq(x: F4) -> f32 {
  return dot(x.a, x.a) + dot(x.b, x.b) + dot(x.c, x.c) + dot(x.d, x.d);
}

// Whether one of the sixteen values is a NaN or an infinity (every exponent bit set): the fused output kernels'
// FINITE flag, about a tenth of the arithmetic of their norm partials and one store instead of T + 2.
fn nonfinite_block(x: F4) -> bool {
  let m = vec4<u32>(0x7fffffffu);
  let top = max(max(bitcast<vec4<u32>>(x.a) & m, bitcast<vec4<u32>>(x.b) & m), max(bitcast<vec4<u32>>(x.c) & m, bitcast<vec4<u32>>(x.d) & m));
  return any(top >= vec4<u32>(0x7f800000u));
}
