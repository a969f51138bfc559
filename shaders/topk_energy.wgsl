// topk_energy: sums of squares of each row of a [rows, numel] f32 buffer, kept at several trim levels at once (the
// interference report's top-k curve, src/engine/merge/metrics.ts):
//   partial[row, block, l] = sum over the block's entries x of the row with key(x) >= thresholds[row, l] of x * x
// where key(x) = bits(x) & 0x7fffffff, the magnitude order trim_mask keeps by (a threshold of 0 keeps every entry), and
// a block is REDUCTION_BLOCK consecutive entries of one row. One pass replaces a copy, a trim and a reduction per level.
// Each thread sums its block level by level (f32, x * x unfused) in four running sums, entry i into sum i % 4 in
// order, reading a quad per step (QuadRows: each row starts on a whole vec4; one f32 per step ran about 3x slower on a
// CPU-emulated device), and writes (s0 + s1) + (s2 + s3) per level; the host adds the partials in float64
// (topkEnergyFromPartials), as the twin (reference/mergeReductions.ts topkEnergyRef) does. No workgroup barriers: a
// CPU-emulated device runs barrier trees several times slower.
//
// Bindings (group 0):
//   0  params      uniform { numel: u32, rows: u32, blocks: u32, zero: u32, levels: u32, quads: u32 }
//                  blocks = ceil(numel / REDUCTION_BLOCK) per row, zero = 0 (see `unfused`), 1 <= levels <= TOPK_MAX_LEVELS,
//                  quads = ceil(numel / 4)
//   1  data        storage, read        array<vec4<f32>>   [rows, quads]: row r's entries from vec4 r * quads (the
//                                                         words past numel are not read)
//   2  thresholds  storage, read        array<u32>   [rows, levels] magnitude bit patterns
//   3  partials    storage, read_write  array<f32>   [rows, blocks, levels]
// Dispatch: one thread per (row, block), rows * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return.

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  zero: u32,
  levels: u32,
  quads: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> thresholds: array<u32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

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
  // span.x is a multiple of 4: quad q holds entries 4q..4q+3, each in its own sum; a partial last quad is masked.
  let full = span.y / 4u;
  let tail = lanes_below(4u * full, span.y);
  let zero = params.zero;
  for (var l = 0u; l < params.levels; l++) {
    let threshold = vec4<u32>(thresholds[row * params.levels + l]);
    var acc = vec4<f32>(0.0);
    for (var q = span.x / 4u; q < full; q++) {
      let x = data[first + q];
      acc += select(vec4<f32>(0.0), unfused4(x * x, zero), (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) >= threshold);
    }
    if (span.y % 4u != 0u) {
      let x = data[first + full];
      acc += select(vec4<f32>(0.0), unfused4(x * x, zero), tail & ((bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) >= threshold));
    }
    partials[k * params.levels + l] = lane_total(acc);
  }
}
