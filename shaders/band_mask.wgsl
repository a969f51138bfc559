// band_mask: zeroes, in place, every element of a row outside its descending magnitude rank band
// (src/engine/gpu/bandMask.ts). Keys are bits(x) & 0x7fffffff; a > b are the keys at the band's first and last rank.
//
// An element with key k is kept when b < k < a, or when k == a (resp. k == b != a) and its ordinal among the row's
// elements equal to a (resp. b) inside this tile, counted in index order, lies in the tile's window [lo, hi). The
// host turns the band [from, to) and the tie counts of earlier tiles and chunks into these windows, so ties are
// broken by flat index across the whole segment. A group the band does not cut has the window [0, 2^32 - 1): all
// kept. An empty band is a = b = 0 with empty windows.
//
// Bindings (group 0):
//   0  params   uniform { numel, tiles_per_row, listed_rows, per_thread, ordered }   a tile is WORKGROUP_SIZE *
//               per_thread consecutive elements of one row; ordered = 0 skips the ordinal scan (no cut tie group)
//   1  rows     storage, read        array<vec4<u32>>   per listed row: (stack row, key a, key b, unused)
//   2  windows  storage, read        array<vec4<u32>>   per tile: (lo_a, hi_a, lo_b, hi_b)
//   3  stack    storage, read_write  array<u32>         [stack rows, numel] f32 bit patterns; dropped entries become +0
// Dispatch: one workgroup per tile (listed_rows * tiles_per_row on a 2-D grid). Thread lid owns the per_thread
// consecutive elements starting at lid * per_thread, so one exclusive scan of the threads' tie counts (two-level,
// 3 barriers) gives every element's ordinal. Bounds: elements past numel are untouched; surplus workgroups touch
// nothing but still reach every barrier (no early return).

struct Params {
  numel: u32,
  tiles_per_row: u32,
  listed_rows: u32,
  per_thread: u32,
  ordered: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> windows: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> stack: array<u32>;

const SCAN_GROUP: u32 = 16u;
const SCAN_GROUPS: u32 = WORKGROUP_SIZE / SCAN_GROUP;

var<workgroup> ties: array<vec2<u32>, WORKGROUP_SIZE>;
var<workgroup> partials: array<vec2<u32>, SCAN_GROUPS>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tile = workgroup_index(wg, nwg);
  let r = tile / params.tiles_per_row;
  let valid = r < params.listed_rows;
  let info = rows[min(r, params.listed_rows - 1u)];
  let first = (tile - r * params.tiles_per_row) * WORKGROUP_SIZE * params.per_thread + lid * params.per_thread;
  let end = select(0u, min(first + params.per_thread, params.numel), valid && first < params.numel);
  let base = info.x * params.numel;

  // Exclusive prefix over threads of (== a, == b != a) counts: each element's ordinal inside the tile.
  var ordinal = vec2<u32>(0u, 0u);
  if (params.ordered != 0u) {
    var mine = vec2<u32>(0u, 0u);
    for (var j = first; j < end; j++) {
      let key = stack[base + j] & 0x7fffffffu;
      mine += vec2<u32>(select(0u, 1u, key == info.y), select(0u, 1u, key == info.z && key != info.y));
    }
    // Two-level scan, 3 barriers (barriers are costly on CPU WebGPU): sums of 16-thread groups, their exclusive
    // prefix by one thread, then each thread adds the counts of the lower threads of its group.
    ties[lid] = mine;
    workgroupBarrier();
    if (lid < SCAN_GROUPS) {
      var sum = vec2<u32>(0u, 0u);
      for (var t = lid * SCAN_GROUP; t < (lid + 1u) * SCAN_GROUP; t++) {
        sum += ties[t];
      }
      partials[lid] = sum;
    }
    workgroupBarrier();
    if (lid == 0u) {
      var sum = vec2<u32>(0u, 0u);
      for (var g = 0u; g < SCAN_GROUPS; g++) {
        let count = partials[g];
        partials[g] = sum;
        sum += count;
      }
    }
    workgroupBarrier();
    ordinal = partials[lid / SCAN_GROUP];
    for (var t = (lid / SCAN_GROUP) * SCAN_GROUP; t < lid; t++) {
      ordinal += ties[t];
    }
  }

  let win = windows[min(tile, params.listed_rows * params.tiles_per_row - 1u)];
  for (var j = first; j < end; j++) {
    let key = stack[base + j] & 0x7fffffffu;
    var keep = key < info.y && key > info.z;
    if (key == info.y) {
      keep = ordinal.x >= win.x && ordinal.x < win.y;
      ordinal.x += 1u;
    } else if (key == info.z) {
      keep = ordinal.y >= win.z && ordinal.y < win.w;
      ordinal.y += 1u;
    }
    if (!keep) {
      stack[base + j] = 0u;
    }
  }
}
