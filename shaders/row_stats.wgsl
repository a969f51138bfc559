// row_stats: per-block partial statistics of each row of a [rows, numel] f32 buffer:
//   sum of x^2 and sum of |x| (f32), number of non-zero entries (bits other than +-0; NaN counts) and number of
//   non-finite entries (infinity or NaN, from the exponent bits) (u32).
// One thread per (row, block of REDUCTION_BLOCK consecutive entries) adds its block, a quad per step, in four running
// f32 sums per statistic (entry i into sum i % 4, in order; then (s0 + s1) + (s2 + s3), as gram) and writes one
// partial; the host adds a row's partials in float64 (rowStatsFromPartials). The twin
// (src/engine/reference/mergeReductions.ts) follows the same order, so the f32 partials match bit for bit on devices
// that keep subnormals. Rows start on whole vec4s (QuadRows): one f32 per step ran about 3x slower on a CPU-emulated
// device. x * x is kept unfused (common.wgsl `unfused`). No workgroup barriers: a CPU-emulated device
// runs barrier trees several times slower than straight per-thread loops.
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, zero: u32, quads: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK) per row, zero = 0 (see `unfused`), quads = ceil(numel / 4)
//   1  data      storage, read        array<vec4<f32>>   [rows, quads]: row r's entries from vec4 r * quads (the
//                                                        words past numel are not read)
//   2  partials  storage, read_write  array<u32>   [rows, blocks, 4]: bits of f32 sum x^2, bits of f32 sum |x|,
//                                                  non-zero count, non-finite count
// Dispatch: one thread per (row, block), rows * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return.

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  zero: u32,
  quads: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partials: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  if (k >= params.rows * params.blocks) {
    return;
  }
  let row = k / params.blocks;
  let span = block_span(k % params.blocks, params.numel);
  let first = row * params.quads;
  // span.x is a multiple of 4: quad q holds entries 4q..4q+3; a partial last quad is masked.
  let quads = (span.y + 3u) / 4u;
  var sq = vec4<f32>(0.0);
  var ab = vec4<f32>(0.0);
  var nz = vec4<u32>(0u);
  var nf = vec4<u32>(0u);
  for (var q = span.x / 4u; q < quads; q++) {
    let x = data[first + q];
    let bits = bitcast<vec4<u32>>(x);
    let live = lanes_below(4u * q, span.y);
    sq = select(sq, sq + unfused4(x * x, params.zero), live);
    ab = select(ab, ab + abs(x), live);
    nz += select(vec4<u32>(0u), vec4<u32>(1u), live & ((bits & vec4<u32>(0x7fffffffu)) != vec4<u32>(0u)));
    nf += select(vec4<u32>(0u), vec4<u32>(1u), live & ((bits & vec4<u32>(0x7f800000u)) == vec4<u32>(0x7f800000u)));
  }
  partials[4u * k] = bitcast<u32>(lane_total(sq));
  partials[4u * k + 1u] = bitcast<u32>(lane_total(ab));
  partials[4u * k + 2u] = dot(nz, vec4<u32>(1u));
  partials[4u * k + 3u] = dot(nf, vec4<u32>(1u));
}
