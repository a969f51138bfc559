// svd_gram: the Gram matrices of one step of the block Jacobi SVD (src/engine/gpu/svd.ts): for each block pair of
// each matrix, G = Y Y^T where Y holds the pair's PAIR vectors (the long-side columns of X's rows; svd_rotate then
// diagonalises G).
//
// Bindings (group 0):
//   0  params  uniform { rows, stride4, len4, nb, step, batch }
//   1  x       storage, read        array<vec4<f32>>  [batch, rows, stride4]: row j = [w_j, acc_j] (svd_init)
//   2  sched   storage, read        array<vec2<u32>>  [nb - 1, nb / 2]: the two blocks of each pair at each step
//   3  g       storage, read_write  array<f32>        [batch, nb / 2, PAIR, PAIR]: G of each pair, row-major
// Local vector v < SVD_BLOCK of a pair is row v of its first block, v >= SVD_BLOCK row v - SVD_BLOCK of the second.
// Dispatch: one thread per (matrix, pair, 4 x 4 tile of G's upper triangle), WORKGROUP_SIZE per workgroup on a 2-D
// grid (flat_index); threads past the end return. A thread sums its 16 dot products over the long side in f32
// (vec4 loads), writes the tile and its mirror. No workgroup memory, no barriers.

const PAIR: u32 = 2u * SVD_BLOCK;
// Tiles per side of G, and tiles in its upper triangle (diagonal included).
const TILES: u32 = PAIR / 4u;
const UPPER: u32 = TILES * (TILES + 1u) / 2u;

struct Params {
  rows: u32,
  stride4: u32,
  len4: u32,
  nb: u32,
  step: u32,
  batch: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> sched: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;

// Row of X (within the matrix) of local vector v of the block pair `blocks`.
fn pair_row(blocks: vec2<u32>, v: u32) -> u32 {
  let blk = select(blocks.y, blocks.x, v < SVD_BLOCK);
  return blk * SVD_BLOCK + v % SVD_BLOCK;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = params;
  let pairs = p.nb / 2u;
  let idx = flat_index(wg, nwg, lid);
  if (idx >= p.batch * pairs * UPPER) {
    return;
  }
  // Tile number -> (ti, tj), ti <= tj, row-major over the upper triangle.
  var ti = 0u;
  var rest = idx % UPPER;
  while (rest >= TILES - ti) {
    rest -= TILES - ti;
    ti++;
  }
  let tj = ti + rest;
  let pr = idx / UPPER;
  let blocks = sched[p.step * pairs + pr % pairs];
  let base = pr / pairs * p.rows * p.stride4;
  var ra: array<u32, 4>;
  var rb: array<u32, 4>;
  for (var e = 0u; e < 4u; e++) {
    ra[e] = base + pair_row(blocks, 4u * ti + e) * p.stride4;
    rb[e] = base + pair_row(blocks, 4u * tj + e) * p.stride4;
  }
  var acc0 = vec4<f32>();
  var acc1 = vec4<f32>();
  var acc2 = vec4<f32>();
  var acc3 = vec4<f32>();
  for (var l = 0u; l < p.len4; l++) {
    let a0 = x[ra[0] + l];
    let a1 = x[ra[1] + l];
    let a2 = x[ra[2] + l];
    let a3 = x[ra[3] + l];
    let b = mat4x4<f32>(x[rb[0] + l], x[rb[1] + l], x[rb[2] + l], x[rb[3] + l]);
    // acc_r[c] += a_r . b_c
    acc0 += a0 * b;
    acc1 += a1 * b;
    acc2 += a2 * b;
    acc3 += a3 * b;
  }
  let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  let out = pr * PAIR * PAIR;
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) {
      g[out + (4u * ti + r) * PAIR + 4u * tj + c] = accs[r][c];
      g[out + (4u * tj + c) * PAIR + 4u * ti + r] = accs[r][c];
    }
  }
}
