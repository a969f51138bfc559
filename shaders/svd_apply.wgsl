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
// Dispatch: one thread per (matrix, block pair, ROWS output rows, vec4 column), the column fastest, WORKGROUP_SIZE
// per workgroup on a 2-D grid (flat_index). Each thread reads the pair's PAIR input vec4s of its column and keeps
// ROWS output vec4s in registers: barrier-free. Bounds: threads past the end return. Every row of X belongs to one
// pair (nb is even), so dst is fully written.

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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = params;
  let pairs = p.nb / 2u;
  let idx = flat_index(wg, nwg, lid);
  if (idx >= p.batch * pairs * GROUPS * p.stride4) {
    return;
  }
  let col = idx % p.stride4;
  let jq = (idx / p.stride4) % GROUPS;
  let pair = (idx / (p.stride4 * GROUPS)) % pairs;
  let t = idx / (p.stride4 * GROUPS * pairs);
  let blocks = sched[p.step * pairs + pair];
  let base = t * p.rows * p.stride4 + col;
  let top = base + blocks.x * SVD_BLOCK * p.stride4;
  let bottom = base + blocks.y * SVD_BLOCK * p.stride4;
  let j0 = ROWS * jq;
  if (moving[t * pairs + pair] == 0u) {
    for (var j = j0; j < j0 + ROWS; j++) {
      let at = row_at(top, bottom, j, p.stride4);
      dst[at] = src[at];
    }
    return;
  }
  // E as vec4s: row i has PAIR / 4 of them; E[i][j0..j0+7] are vec4s 2 jq and 2 jq + 1 of row i.
  let q_base = (t * pairs + pair) * PAIR * (PAIR / 4u) + 2u * jq;
  var acc0 = vec4<f32>();
  var acc1 = vec4<f32>();
  var acc2 = vec4<f32>();
  var acc3 = vec4<f32>();
  // ROWS (8) accumulators, spelled out so that they stay in registers.
  var acc4 = vec4<f32>();
  var acc5 = vec4<f32>();
  var acc6 = vec4<f32>();
  var acc7 = vec4<f32>();
  for (var i = 0u; i < PAIR; i++) {
    let y = src[row_at(top, bottom, i, p.stride4)];
    // E[i][j0 .. j0 + 7]
    let qi = q[q_base + i * (PAIR / 4u)];
    let qj = q[q_base + i * (PAIR / 4u) + 1u];
    acc0 += qi.x * y;
    acc1 += qi.y * y;
    acc2 += qi.z * y;
    acc3 += qi.w * y;
    acc4 += qj.x * y;
    acc5 += qj.y * y;
    acc6 += qj.z * y;
    acc7 += qj.w * y;
  }
  let accs = array<vec4<f32>, ROWS>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
  for (var r = 0u; r < ROWS; r++) {
    let at = row_at(top, bottom, j0 + r, p.stride4);
    dst[at] = src[at] + accs[r];
  }
}
