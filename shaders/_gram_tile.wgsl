// _gram_tile.wgsl: a part, not a kernel (see _raw_block.wgsl for how parts are loaded). The tiles of gram and gram_raw:
// thread k takes block k % blocks of tile k / blocks, tiles numbered row-major over the upper triangle of n = ceil(rows
// / 2) tile rows; tile (ta, tb), ta <= tb, is rows a0 = 2 ta, a1 = a0 + 1 against b0 = 2 tb, b1 = b0 + 1, a row past
// the last reading the last (its pairs are not written). Such a kernel declares `params` with `rows` and `blocks`, and
// `partials: array<f32>` [pairs, blocks].

struct GramTile {
  block: u32,
  ta: u32,
  tb: u32,
  a0: u32,
  a1: u32,
  b0: u32,
  b1: u32,
}

// Number of pair (a, b), a <= b, row-major over the upper triangle: row a starts after rows - i pairs of each i < a.
fn pair_index(a: u32, b: u32) -> u32 {
  return a * (2u * params.rows + 1u - a) / 2u + (b - a);
}

fn gram_tile(k: u32) -> GramTile {
  let rows = params.rows;
  let blocks = params.blocks;
  // Tile row ta holds tiles (ta, ta..n-1): step over whole rows of the triangle of n tile rows.
  let n = (rows + 1u) / 2u;
  var p = k / blocks;
  var ta = 0u;
  while (p >= n - ta) {
    p -= n - ta;
    ta++;
  }
  let tb = ta + p;
  let a0 = 2u * ta;
  let b0 = 2u * tb;
  return GramTile(k % blocks, ta, tb, a0, min(a0 + 1u, rows - 1u), b0, min(b0 + 1u, rows - 1u));
}

// Writes the tile's four sums (a0 b0, a0 b1, a1 b0, a1 b1), each as lane_total, for the pairs in the upper triangle
// with both rows real: (a1, b0) only off the diagonal.
fn store_tile(t: GramTile, s00: vec4<f32>, s01: vec4<f32>, s10: vec4<f32>, s11: vec4<f32>) {
  let blocks = params.blocks;
  let a_pair = t.a0 + 1u < params.rows;
  let b_pair = t.b0 + 1u < params.rows;
  partials[pair_index(t.a0, t.b0) * blocks + t.block] = lane_total(s00);
  if (b_pair) {
    partials[pair_index(t.a0, t.b1) * blocks + t.block] = lane_total(s01);
  }
  if (a_pair && t.ta < t.tb) {
    partials[pair_index(t.a1, t.b0) * blocks + t.block] = lane_total(s10);
  }
  if (a_pair && b_pair) {
    partials[pair_index(t.a1, t.b1) * blocks + t.block] = lane_total(s11);
  }
}
