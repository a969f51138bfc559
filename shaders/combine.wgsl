// combine: weighted sum of the rows of a stack.   out[j] = sum over r of coeffs[r] * stack[r * numel + j]
//
// Pipeline constants: QUADS   numel % 4 == 0: every row starts on a whole vec4, so a thread reads a quad of each row
//                             per step; otherwise it reads its four elements one by one (same sums)
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32, zero: u32 }   zero is always 0 (see `unfused` in common.wgsl)
//   1  coeffs  storage, read        array<f32>         one coefficient per row (a storage buffer, so any number of models)
//   2  stack   storage, read        array<vec4<f32>>   [rows, numel] f32, row-major, bound in whole quads (bindQuads)
//   3  out     storage, read_write  array<vec4<f32>>   numel elements, bound in whole quads
// Dispatch: one thread per THREAD_ELEMENTS = 4 consecutive elements (one output quad), WORKGROUP_SIZE threads per
// workgroup, on a 2-D grid (flat_index). Four sums per thread amortise the row loop, and on a CPU-emulated device a
// storage access costs about as much whatever its width: one f32 per access ran about 2x slower than a quad.
// Bounds: elements j >= numel are not read, and the padding words of the last quad of `out` keep their value. Each sum
// starts at 0 and adds rows in order 0..rows-1 in f32, one rounded product and one rounded add per row (never a fused
// multiply-add), so the CPU twin reproduces it exactly.

override QUADS: bool = true;

struct Params {
  numel: u32,
  rows: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> coeffs: array<f32>;
@group(0) @binding(2) var<storage, read> stack: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

// The body below is written for 4 elements per thread.
const_assert THREAD_ELEMENTS == 4u;

// Element i of the flat stack.
fn element(i: u32) -> f32 {
  return stack[i / 4u][i % 4u];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let q = flat_index(wg, nwg, lid);
  let numel = params.numel;
  let j = THREAD_ELEMENTS * q;
  if (j >= numel) {
    return;
  }
  let zero = params.zero;
  var acc = vec4<f32>(0.0);
  if (QUADS) {
    let quads = numel / 4u;
    for (var r = 0u; r < params.rows; r++) {
      acc += unfused4(coeffs[r] * stack[r * quads + q], zero);
    }
    out[q] = acc;
    return;
  }
  let live = lanes_below(j, numel);
  // Lanes past numel read element j (in bounds) and are dropped below.
  let at = select(vec4<u32>(j), vec4<u32>(j) + vec4<u32>(0u, 1u, 2u, 3u), live);
  for (var r = 0u; r < params.rows; r++) {
    let row = vec4<u32>(r * numel) + at;
    let x = vec4<f32>(element(row.x), element(row.y), element(row.z), element(row.w));
    acc += unfused4(coeffs[r] * x, zero);
  }
  out[q] = select(out[q], acc, live);
}
