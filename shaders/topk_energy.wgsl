// topk_energy: sums of squares of each row of a [rows, numel] f32 buffer, kept at several trim levels at once (the
// interference report's top-k curve, src/engine/merge/metrics.ts):
//   partial[row, block, l] = sum over the block's entries x of the row with key(x) >= thresholds[row, l] of x * x
// where key(x) = bits(x) & 0x7fffffff, the magnitude order trim_mask keeps by (a threshold of 0 keeps every entry), and
// a block is REDUCTION_BLOCK consecutive entries of one row. One pass replaces a copy, a trim and a reduction per level.
// Each thread reads its block once, a quad per step (QuadRows: each row starts on a whole vec4; one f32 per step ran
// about 3x slower on a CPU-emulated device), and adds each entry's square (f32, x * x unfused) to every level that
// keeps it, each level in four running sums (entry i into sum i % 4, in order), then writes (s0 + s1) + (s2 + s3) per
// level; the host adds the partials in float64 (topkEnergyFromPartials), as the twin (reference/mergeReductions.ts
// topkEnergyRef) does. The number of levels is the pipeline constant LEVELS and the levels' sums are spelled out
// (s0 .. s15, each under `LEVELS > l`): the compiler drops the unused ones and keeps the rest in registers, where a
// loop over the levels re-read the block once per level (9 levels for the curve: about 3x slower on SwiftShader). No
// workgroup barriers: a CPU-emulated device runs barrier trees several times slower.
//
// Bindings (group 0):
//   0  params      uniform { numel: u32, rows: u32, blocks: u32, zero: u32, levels: u32, quads: u32 }
//                  blocks = ceil(numel / REDUCTION_BLOCK) per row, zero = 0 (see `unfused`), levels = LEVELS
//                  (1 <= LEVELS <= TOPK_MAX_LEVELS = 16), quads = ceil(numel / 4)
//   1  data        storage, read        array<vec4<f32>>   [rows, quads]: row r's entries from vec4 r * quads (the
//                                                         words past numel are not read)
//   2  thresholds  storage, read        array<u32>   [rows, LEVELS] magnitude bit patterns
//   3  partials    storage, read_write  array<f32>   [rows, blocks, LEVELS]
// Dispatch: one thread per (row, block), rows * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return.

override LEVELS: u32 = 1u;
// The sums below are spelled out for TOPK_MAX_LEVELS levels.
const_assert TOPK_MAX_LEVELS == 16u;

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

// Threshold of level l of `row` as a quad (levels past LEVELS read the last one; their sums are never used).
fn threshold(row: u32, l: u32) -> vec4<u32> {
  return vec4<u32>(thresholds[row * LEVELS + min(l, LEVELS - 1u)]);
}

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
  let zero = params.zero;
  let t0 = threshold(row, 0u);
  let t1 = threshold(row, 1u);
  let t2 = threshold(row, 2u);
  let t3 = threshold(row, 3u);
  let t4 = threshold(row, 4u);
  let t5 = threshold(row, 5u);
  let t6 = threshold(row, 6u);
  let t7 = threshold(row, 7u);
  let t8 = threshold(row, 8u);
  let t9 = threshold(row, 9u);
  let t10 = threshold(row, 10u);
  let t11 = threshold(row, 11u);
  let t12 = threshold(row, 12u);
  let t13 = threshold(row, 13u);
  let t14 = threshold(row, 14u);
  let t15 = threshold(row, 15u);
  let z = vec4<f32>(0.0);
  var s0 = z;
  var s1 = z;
  var s2 = z;
  var s3 = z;
  var s4 = z;
  var s5 = z;
  var s6 = z;
  var s7 = z;
  var s8 = z;
  var s9 = z;
  var s10 = z;
  var s11 = z;
  var s12 = z;
  var s13 = z;
  var s14 = z;
  var s15 = z;
  // span.x is a multiple of 4: quad q holds entries 4q..4q+3, each in its own sum; a partial last quad adds +0 for the
  // entries past the block (as a level's threshold leaves out an entry), which leaves a sum of squares unchanged.
  for (var q = span.x / 4u; q < (span.y + 3u) / 4u; q++) {
    let x = data[first + q];
    let key = bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu);
    let sq = select(z, unfused4(x * x, zero), lanes_below(4u * q, span.y));
    if (LEVELS > 0u) { s0 += select(z, sq, key >= t0); }
    if (LEVELS > 1u) { s1 += select(z, sq, key >= t1); }
    if (LEVELS > 2u) { s2 += select(z, sq, key >= t2); }
    if (LEVELS > 3u) { s3 += select(z, sq, key >= t3); }
    if (LEVELS > 4u) { s4 += select(z, sq, key >= t4); }
    if (LEVELS > 5u) { s5 += select(z, sq, key >= t5); }
    if (LEVELS > 6u) { s6 += select(z, sq, key >= t6); }
    if (LEVELS > 7u) { s7 += select(z, sq, key >= t7); }
    if (LEVELS > 8u) { s8 += select(z, sq, key >= t8); }
    if (LEVELS > 9u) { s9 += select(z, sq, key >= t9); }
    if (LEVELS > 10u) { s10 += select(z, sq, key >= t10); }
    if (LEVELS > 11u) { s11 += select(z, sq, key >= t11); }
    if (LEVELS > 12u) { s12 += select(z, sq, key >= t12); }
    if (LEVELS > 13u) { s13 += select(z, sq, key >= t13); }
    if (LEVELS > 14u) { s14 += select(z, sq, key >= t14); }
    if (LEVELS > 15u) { s15 += select(z, sq, key >= t15); }
  }
  let at = k * LEVELS;
  if (LEVELS > 0u) { partials[at] = lane_total(s0); }
  if (LEVELS > 1u) { partials[at + 1u] = lane_total(s1); }
  if (LEVELS > 2u) { partials[at + 2u] = lane_total(s2); }
  if (LEVELS > 3u) { partials[at + 3u] = lane_total(s3); }
  if (LEVELS > 4u) { partials[at + 4u] = lane_total(s4); }
  if (LEVELS > 5u) { partials[at + 5u] = lane_total(s5); }
  if (LEVELS > 6u) { partials[at + 6u] = lane_total(s6); }
  if (LEVELS > 7u) { partials[at + 7u] = lane_total(s7); }
  if (LEVELS > 8u) { partials[at + 8u] = lane_total(s8); }
  if (LEVELS > 9u) { partials[at + 9u] = lane_total(s9); }
  if (LEVELS > 10u) { partials[at + 10u] = lane_total(s10); }
  if (LEVELS > 11u) { partials[at + 11u] = lane_total(s11); }
  if (LEVELS > 12u) { partials[at + 12u] = lane_total(s12); }
  if (LEVELS > 13u) { partials[at + 13u] = lane_total(s13); }
  if (LEVELS > 14u) { partials[at + 14u] = lane_total(s14); }
  if (LEVELS > 15u) { partials[at + 15u] = lane_total(s15); }
}
