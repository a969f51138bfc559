// band_count: per tile of a row, how many elements equal the band's boundary keys (src/engine/gpu/bandMask.ts).
//
// Keys are bits(x) & 0x7fffffff. A boundary tie group that the band cuts (some equal entries kept, some dropped) is
// split by flat index; this kernel gives each tile's share of every group so the host can prefix-sum them across
// tiles and chunks. b == a counts only as a.
//
// Bindings (group 0):
//   0  params  uniform { numel, tiles_per_row, listed_rows, per_thread }   a tile is WORKGROUP_SIZE * per_thread
//              consecutive elements of one row
//   1  rows    storage, read        array<vec4<u32>>     per listed row: (stack row, key a, key b, unused)
//   2  stack   storage, read        array<u32>           [stack rows, numel] f32 bit patterns, row-major
//   3  counts  storage, read_write  array<atomic<u32>>   [listed_rows * tiles_per_row, 2]: (== a, == b and != a);
//                                                        zero on entry
// Dispatch: one workgroup per tile (listed_rows * tiles_per_row on a 2-D grid); thread lid reads tile elements
// i * WORKGROUP_SIZE + lid (coalesced) and adds its two counts with one atomic each. No barriers.
// Bounds: elements past numel and surplus workgroups count nothing.

struct Params {
  numel: u32,
  tiles_per_row: u32,
  listed_rows: u32,
  per_thread: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> stack: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tile = workgroup_index(wg, nwg);
  let r = tile / params.tiles_per_row;
  if (r >= params.listed_rows) {
    return;
  }
  let info = rows[r];
  let start = (tile - r * params.tiles_per_row) * WORKGROUP_SIZE * params.per_thread;
  var equal_a = 0u;
  var equal_b = 0u;
  for (var i = 0u; i < params.per_thread; i++) {
    let j = start + i * WORKGROUP_SIZE + lid;
    if (j >= params.numel) {
      break;
    }
    let key = stack[info.x * params.numel + j] & 0x7fffffffu;
    equal_a += select(0u, 1u, key == info.y);
    equal_b += select(0u, 1u, key == info.z && key != info.y);
  }
  if (equal_a > 0u) {
    atomicAdd(&counts[2u * tile], equal_a);
  }
  if (equal_b > 0u) {
    atomicAdd(&counts[2u * tile + 1u], equal_b);
  }
}
