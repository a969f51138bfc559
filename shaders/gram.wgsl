// gram: per-block partial dot products between the rows of a [rows, numel] f32 buffer, for every pair a <= b (the
// upper triangle of the Gram matrix, diagonal included; cosines, Model Stock and SLERP use it).
// Pair p is numbered row-major over the upper triangle: (0,0), (0,1), ..., (0,rows-1), (1,1), ...
// One thread per (tile, block of REDUCTION_BLOCK consecutive elements), a tile being rows a0 = 2 ta, a0 + 1 against
// rows b0 = 2 tb, b0 + 1 (ta <= tb; a row past the last reads the last and its pairs are not written): it reads the
// four rows' quads once per step and adds the four products (kept unfused) of each pair in the upper triangle, each
// pair in four running sums, element i into sum i % 4 in element order, and writes (s0 + s1) + (s2 + s3) per pair;
// the host adds a pair's partials in float64. A thread per pair read both rows for every pair, 2 quads per product; a
// tile reads 4 quads for its four pairs (three on the diagonal): T = 8 takes 10 tiles, 40 quad loads per column quad
// instead of 72. Rows are read a quad per step (QuadRows: each row starts on a whole vec4): on a CPU-emulated device a
// storage access costs about as much whatever its width, and one f32 per step ran about 3x slower. No workgroup
// barriers (see row_stats).
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, tiles: u32, zero: u32, quads: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK), tiles = n (n + 1) / 2 with n = ceil(rows / 2), zero = 0
//                (see `unfused`), quads = ceil(numel / 4)
//   1  data      storage, read        array<vec4<f32>>   [rows, quads]: row r's elements from vec4 r * quads; the
//                                                        words past numel are not read
//   2  partials  storage, read_write  array<f32>         [pairs, blocks], pairs = rows * (rows + 1) / 2
// Dispatch: one thread per (tile, block), tiles * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index), tiles numbered row-major over the upper triangle as pairs are; surplus threads return.

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  tiles: u32,
  zero: u32,
  quads: u32,
}

// uses: _gram_tile

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  if (k >= params.tiles * params.blocks) {
    return;
  }
  let tile = gram_tile(k);
  let span = block_span(tile.block, params.numel);
  let zero = params.zero;
  let quads = params.quads;
  let ra0 = tile.a0 * quads;
  let ra1 = tile.a1 * quads;
  let rb0 = tile.b0 * quads;
  let rb1 = tile.b1 * quads;
  // span.x is a multiple of 4: quad q holds elements 4q..4q+3, each in its own sum.
  let full = span.y / 4u;
  let z = vec4<f32>(0.0);
  var s00 = z;
  var s01 = z;
  var s10 = z;
  var s11 = z;
  for (var q = span.x / 4u; q < full; q++) {
    let xa0 = data[ra0 + q];
    let xa1 = data[ra1 + q];
    let xb0 = data[rb0 + q];
    let xb1 = data[rb1 + q];
    s00 += unfused4(xa0 * xb0, zero);
    s01 += unfused4(xa0 * xb1, zero);
    s10 += unfused4(xa1 * xb0, zero);
    s11 += unfused4(xa1 * xb1, zero);
  }
  if (span.y % 4u != 0u) {
    let live = lanes_below(4u * full, span.y);
    let xa0 = data[ra0 + full];
    let xa1 = data[ra1 + full];
    let xb0 = data[rb0 + full];
    let xb1 = data[rb1 + full];
    s00 = select(s00, s00 + unfused4(xa0 * xb0, zero), live);
    s01 = select(s01, s01 + unfused4(xa0 * xb1, zero), live);
    s10 = select(s10, s10 + unfused4(xa1 * xb0, zero), live);
    s11 = select(s11, s11 + unfused4(xa1 * xb1, zero), live);
  }
  store_tile(tile, s00, s01, s10, s11);
}
