// topk_energy: sums of squares of each row of a [rows, numel] f32 buffer, kept at several trim levels at once (the
// interference report's top-k curve, src/engine/merge/metrics.ts):
//   partial[row, block, l] = sum over the block's entries x of the row with key(x) >= thresholds[row, l] of x * x
// where key(x) = bits(x) & 0x7fffffff, the magnitude order trim_mask keeps by (a threshold of 0 keeps every entry), and
// a block is REDUCTION_BLOCK consecutive entries of one row. One pass replaces a copy, a trim and a reduction per level.
// Each thread sums its block level by level in element order (f32, x * x unfused) and writes one partial per level;
// the host adds the partials in float64 (topkEnergyFromPartials), as the twin (reference/mergeReductions.ts
// topkEnergyRef) does. No workgroup barriers: a CPU-emulated device runs barrier trees several times slower.
//
// Bindings (group 0):
//   0  params      uniform { numel: u32, rows: u32, blocks: u32, zero: u32, levels: u32 }
//                  blocks = ceil(numel / REDUCTION_BLOCK) per row, zero = 0 (see `unfused`), 1 <= levels <= TOPK_MAX_LEVELS
//   1  data        storage, read        array<f32>   [rows, numel], row-major
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
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
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
  let span = block_span(k % params.blocks, params.numel) + vec2<u32>(row * params.numel);
  for (var l = 0u; l < params.levels; l++) {
    let threshold = thresholds[row * params.levels + l];
    var sum = 0.0;
    for (var i = span.x; i < span.y; i++) {
      let x = data[i];
      if ((bitcast<u32>(x) & 0x7fffffffu) >= threshold) {
        sum += unfused(x * x, params.zero);
      }
    }
    partials[k * params.levels + l] = sum;
  }
}
