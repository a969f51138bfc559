// trimmed_sign_sum: the TIES majority-sign pass in one read of the untrimmed stack. For every column j,
//   s_j = sum over rows of (key(x[r, j]) >= thresholds[r] ? x[r, j] : +0), in f32 from 0 in row order,
// which is bit for bit the column sum of trim_mask's output, and gamma_j = sign(s_j) from its bits (+-0 and NaN
// give 0, as in sign_sum). The counts of columns with gamma +1 and -1 are added into a 64-bit accumulator that
// lives across all chunks of the pass, so the host reads 16 bytes once per model instead of partials per chunk.
// The stack is only read: no copy, no trim pass, no workgroup barriers (which CPU-emulated devices run slowly).
//
// Bindings (group 0):
//   0  params      uniform { numel: u32, quads: u32, rows: u32, per_thread: u32 }
//                  quads = row stride in vec4 words (>= numel / 4); words of a row past numel are ignored
//   1  thresholds  storage, read        array<u32>          one magnitude bit pattern per row (0 keeps the row)
//   2  stack       storage, read        array<vec4<u32>>    [rows, quads] vec4s of f32 bit patterns, row-major
//   3  acc         storage, read_write  array<atomic<u32>>  [4]: (+1 count low, high), (-1 count low, high); the
//                                                           high word is bumped when the low word wraps
// Dispatch: ceil(quads / (WORKGROUP_SIZE * per_thread)) workgroups on a 2-D grid. Thread lid of workgroup w takes
// the column quads w * WORKGROUP_SIZE * per_thread + i * WORKGROUP_SIZE + lid (i < per_thread), four columns at a
// time in vec4 arithmetic (straight-line vec4 code runs several times faster than scalar steps on CPU-emulated
// devices), and makes at most two atomic adds. Bounds: quads past `quads` and columns past numel count nothing.

struct Params {
  numel: u32,
  quads: u32,
  rows: u32,
  per_thread: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> thresholds: array<u32>;
@group(0) @binding(2) var<storage, read> stack: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;

fn add_count(word: u32, count: u32) {
  let old = atomicAdd(&acc[word], count);
  if (old > 0xffffffffu - count) {
    atomicAdd(&acc[word + 1u], 1u);
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let block = workgroup_index(wg, nwg) * WORKGROUP_SIZE * params.per_thread;
  var positive = vec4<u32>(0u);
  var negative = vec4<u32>(0u);
  for (var i = 0u; i < params.per_thread; i++) {
    let g = block + i * WORKGROUP_SIZE + lid;
    if (g >= params.quads) {
      break;
    }
    let inside = lanes_below(4u * g, params.numel);
    var s = vec4<f32>(0.0);
    for (var r = 0u; r < params.rows; r++) {
      let bits = stack[r * params.quads + g];
      let keep = inside & ((bits & vec4<u32>(0x7fffffffu)) >= vec4<u32>(thresholds[r]));
      s += select(vec4<f32>(0.0), bitcast<vec4<f32>>(bits), keep);
    }
    let sb = bitcast<vec4<u32>>(s);
    let mag = sb & vec4<u32>(0x7fffffffu);
    let signed = (mag != vec4<u32>(0u)) & (mag <= vec4<u32>(0x7f800000u));
    let neg = (sb >> vec4<u32>(31u)) == vec4<u32>(1u);
    positive += select(vec4<u32>(0u), vec4<u32>(1u), signed & !neg);
    negative += select(vec4<u32>(0u), vec4<u32>(1u), signed & neg);
  }
  let p = positive.x + positive.y + positive.z + positive.w;
  let n = negative.x + negative.y + negative.z + negative.w;
  if (p > 0u) {
    add_count(0u, p);
  }
  if (n > 0u) {
    add_count(2u, n);
  }
}
