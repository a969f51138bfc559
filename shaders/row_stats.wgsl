// row_stats: per-block partial statistics of each row of a [rows, numel] f32 buffer:
//   sum of x^2 and sum of |x| (f32), number of non-zero entries (bits other than +-0; NaN counts) and number of
//   non-finite entries (infinity or NaN, from the exponent bits) (u32).
// One thread per (row, block of REDUCTION_BLOCK consecutive entries) adds its block in element order and writes one
// partial; the host adds a row's partials in float64 (rowStatsFromPartials). The twin
// (src/engine/reference/mergeReductions.ts) follows the same order, so the f32 partials match bit for bit on devices
// that keep subnormals. x * x is kept unfused (common.wgsl `unfused`). No workgroup barriers: a CPU-emulated device
// runs barrier trees several times slower than straight per-thread loops.
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, zero: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK) per row, zero = 0 (see `unfused`)
//   1  data      storage, read        array<f32>   [rows, numel], row-major
//   2  partials  storage, read_write  array<u32>   [rows, blocks, 4]: bits of f32 sum x^2, bits of f32 sum |x|,
//                                                  non-zero count, non-finite count
// Dispatch: one thread per (row, block), rows * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return.

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
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
  let span = block_span(k % params.blocks, params.numel) + vec2<u32>(row * params.numel);
  var sq = 0.0;
  var ab = 0.0;
  var nz = 0u;
  var nf = 0u;
  for (var i = span.x; i < span.y; i++) {
    let x = data[i];
    let bits = bitcast<u32>(x);
    sq += unfused(x * x, params.zero);
    ab += abs(x);
    nz += select(0u, 1u, (bits & 0x7fffffffu) != 0u);
    nf += select(0u, 1u, (bits & 0x7f800000u) == 0x7f800000u);
  }
  partials[4u * k] = bitcast<u32>(sq);
  partials[4u * k + 1u] = bitcast<u32>(ab);
  partials[4u * k + 2u] = nz;
  partials[4u * k + 3u] = nf;
}
