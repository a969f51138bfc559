// svd_apply: applies the rotations of one block Jacobi step (svd_rotate) to whole rows of X: for each block pair,
// the PAIR rows y_0..y_{PAIR-1} become y'_j = sum_i Q[i][j] y_i = y_j + sum_i E[i][j] y_i (long side and
// accumulated rotation alike), with E = Q - I as svd_rotate stores it (adding the small correction to y_j keeps
// nearly-identity steps from rounding the same way every time).
//
// Bindings (group 0):
//   0  params  uniform { rows, stride4, nb, step, batch }
//   1  sched   storage, read        array<vec2<u32>>  [nb - 1, nb / 2]: the two blocks of each pair at each step
//   2  q       storage, read        array<vec4<f32>>  [batch, nb / 2, PAIR, PAIR / 4]: E of each block pair
//   3  src     storage, read        array<vec4<f32>>  [batch, rows, stride4]: X before the step
//   4  dst     storage, read_write  array<vec4<f32>>  [batch, rows, stride4]: X after the step (another buffer)
//   5  moving  storage, read        array<u32>        [batch, nb / 2]: 0 = the pair did not rotate (E = 0): copy
// Dispatch: one thread per (matrix, block pair, ROWS output rows, two adjacent vec4 columns), the columns fastest,
// WORKGROUP_SIZE per workgroup on a 2-D grid (flat_index). Each thread reads the pair's PAIR input vec4s of its
// columns and keeps 2 x ROWS output vec4s in registers: barrier-free. Two columns share each load of E (one column
// per thread made 3 loads per 32 multiply-adds). Bounds: threads past the end return; the second column of an odd
// last pair is skipped. Every row of X belongs to one pair (nb is even), so dst is fully written.

const PAIR: u32 = 2u * SVD_BLOCK;
const ROWS: u32 = SVD_APPLY_ROWS;
const GROUPS: u32 = PAIR / ROWS;

struct Params {
  rows: u32,
  stride4: u32,
  nb: u32,
  step: u32,
  batch: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> sched: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> moving: array<u32>;

// Index in src / dst of this thread's column of local row v of the pair (top block: v < SVD_BLOCK).
fn row_at(top: u32, bottom: u32, v: u32, stride4: u32) -> u32 {
  if (v < SVD_BLOCK) {
    return top + v * stride4;
  }
  return bottom + (v - SVD_BLOCK) * stride4;
}

// ROWS (8) output vec4s of one column, spelled out so that they stay in registers.
struct Rows8 { r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>, r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32> }

// acc + E[i][j0 .. j0 + 7] * y (qi, qj: the two vec4s of that row of E).
fn add_row(acc: Rows8, qi: vec4<f32>, qj: vec4<f32>, y: vec4<f32>) -> Rows8 {
  return Rows8(acc.r0 + qi.x * y, acc.r1 + qi.y * y, acc.r2 + qi.z * y, acc.r3 + qi.w * y, acc.r4 + qj.x * y, acc.r5 + qj.y * y, acc.r6 + qj.z * y, acc.r7 + qj.w * y);
}

fn row_of(acc: Rows8, r: u32) -> vec4<f32> {
  switch (r) {
    case 0u: { return acc.r0; }
    case 1u: { return acc.r1; }
    case 2u: { return acc.r2; }
    case 3u: { return acc.r3; }
    case 4u: { return acc.r4; }
    case 5u: { return acc.r5; }
    case 6u: { return acc.r6; }
    default: { return acc.r7; }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = params;
  let pairs = p.nb / 2u;
  let cols2 = (p.stride4 + 1u) / 2u;
  let idx = flat_index(wg, nwg, lid);
  if (idx >= p.batch * pairs * GROUPS * cols2) {
    return;
  }
  let col = 2u * (idx % cols2);
  // The second column exists unless stride4 is odd and this is the last pair of columns.
  let two = col + 1u < p.stride4;
  let jq = (idx / cols2) % GROUPS;
  let pair = (idx / (cols2 * GROUPS)) % pairs;
  let t = idx / (cols2 * GROUPS * pairs);
  let blocks = sched[p.step * pairs + pair];
  let base = t * p.rows * p.stride4 + col;
  let top = base + blocks.x * SVD_BLOCK * p.stride4;
  let bottom = base + blocks.y * SVD_BLOCK * p.stride4;
  let j0 = ROWS * jq;
  if (moving[t * pairs + pair] == 0u) {
    for (var j = j0; j < j0 + ROWS; j++) {
      let at = row_at(top, bottom, j, p.stride4);
      dst[at] = src[at];
      if (two) {
        dst[at + 1u] = src[at + 1u];
      }
    }
    return;
  }
  // E as vec4s: row i has PAIR / 4 of them; E[i][j0..j0+7] are vec4s 2 jq and 2 jq + 1 of row i.
  let q_base = (t * pairs + pair) * PAIR * (PAIR / 4u) + 2u * jq;
  let z = vec4<f32>();
  var a = Rows8(z, z, z, z, z, z, z, z);
  var b = Rows8(z, z, z, z, z, z, z, z);
  // Without a second column, b adds the first again (never stored): the loop stays free of branches.
  let second = select(0u, 1u, two);
  for (var i = 0u; i < PAIR; i++) {
    let at = row_at(top, bottom, i, p.stride4);
    let qi = q[q_base + i * (PAIR / 4u)];
    let qj = q[q_base + i * (PAIR / 4u) + 1u];
    a = add_row(a, qi, qj, src[at]);
    b = add_row(b, qi, qj, src[at + second]);
  }
  for (var r = 0u; r < ROWS; r++) {
    let at = row_at(top, bottom, j0 + r, p.stride4);
    dst[at] = src[at] + row_of(a, r);
    if (two) {
      dst[at + 1u] = src[at + 1u] + row_of(b, r);
    }
  }
}
