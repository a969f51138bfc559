// svd_rotate: the rotations of one step of the block one-sided Jacobi SVD (src/engine/gpu/svd.ts): for each block
// pair of each matrix, an orthogonal Q (PAIR x PAIR) that makes the pair's vectors more orthogonal, from their Gram
// matrix G (svd_gram), plus the step's convergence measure. svd_apply then applies Q to the pair's rows.
//
// Per workgroup (one block pair of one matrix), G in workgroup memory:
//   1. off = max over p < q of |G_pq| / sqrt(G_pp G_qq), skipping vectors with G_pp <= zero_sq (zero vectors);
//      atomicMax into off[t] (non-negative f32 bits order like u32s). The host stops when every off <= tol.
//   2. If off > tol: cyclic two-sided Jacobi on G, accumulating Q = J_1 J_2 ... (so Q^T G Q tends to diagonal).
//      Each rotation zeroes G_pq with the symmetric Schur formula (t = tan of the angle, the smaller root of
//      t^2 + 2 zeta t - 1 = 0, zeta = (G_qq - G_pp) / (2 G_pq)); pairs already below tol (relative) or with a zero
//      vector are skipped. A round rotates the PAIR / 2 disjoint index pairs of the round-robin order at once (PAIR
//      - 1 rounds per sweep, two barriers per round). Sweeps stop when one rotates nothing, or after max_inner.
//   3. E = Q - I is written out (E = 0 when nothing rotated), and moving = whether anything rotated.
// Why E = Q - I: near convergence the angles are tiny and c = cos rounds to exactly 1 in f32, so c^2 + s^2 =
// 1 + t^2 and every rotation would inflate the vectors a little, always the same way; over thousands of rotations
// that bias cost ~1e-5 of orthogonality. Accumulating x + ((c - 1) x - s y), with c - 1 = -t^2 / (h (1 + h)) and
// h = sqrt(1 + t^2) computed directly, and storing E rather than Q (whose diagonal would round to 1) avoids it.
//
// Bindings (group 0):
//   0  params  uniform { pairs, batch, max_inner, tol: f32, zero_sq: f32 }
//   1  g       storage, read        array<f32>        [batch, pairs, PAIR, PAIR]: G of each pair (svd_gram)
//   2  q       storage, read_write  array<f32>        [batch, pairs, PAIR, PAIR]: E = Q - I of each pair, row-major
//   3  off     storage, read_write  array<atomic<u32>> [batch]: bits of the largest off seen (host zeroes it)
//   4  moving  storage, read_write  array<u32>        [batch, pairs]: 1 if the pair rotated (E != 0), else 0
// Dispatch: one workgroup of SVD_THREADS per (matrix, pair), batch * pairs workgroups on a 2-D grid
// (workgroup_index); surplus workgroups return (a uniform branch: every barrier is still reached by all threads).

// uses: _svd_rotation

const SVD_THREADS: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gin: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> off: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> moving: array<u32>;

var<workgroup> g: array<f32, PAIR * PAIR>;
var<workgroup> qm: array<f32, PAIR * PAIR>;
// Rotation of each index pair of the current round: (c, s, t, c - 1).
var<workgroup> rot: array<vec4<f32>, SVD_BLOCK>;
var<workgroup> wg_off: atomic<u32>;
var<workgroup> wg_rotated: atomic<u32>;
var<workgroup> flag: u32;

// Indices of pair i in round r of an inner sweep: the circle schedule over PAIR indices (PAIR - 1 fixed, the others
// turning), so the PAIR - 1 rounds of a sweep meet every two indices once.
fn circle_pair(i: u32, r: u32) -> vec2<u32> {
  let ring = PAIR - 1u;
  if (i == 0u) {
    return vec2<u32>(ring, r % ring);
  }
  return vec2<u32>((r + i) % ring, (r + ring - i) % ring);
}

@compute @workgroup_size(SVD_THREADS)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let p = params;
  let w = workgroup_index(wg, nwg);
  if (w >= p.batch * p.pairs) {
    return;
  }
  let t = w / p.pairs;
  let base = w * PAIR * PAIR;
  if (tid == 0u) {
    atomicStore(&wg_off, 0u);
    atomicStore(&wg_rotated, 0u);
  }
  for (var e = tid; e < PAIR * PAIR; e += SVD_THREADS) {
    g[e] = gin[base + e];
    qm[e] = 0.0;
  }
  workgroupBarrier();

  // 1. Convergence measure.
  var local_off = 0.0;
  for (var e = tid; e < PAIR * PAIR; e += SVD_THREADS) {
    let i = e / PAIR;
    let j = e % PAIR;
    let gii = g[i * PAIR + i];
    let gjj = g[j * PAIR + j];
    if (i < j && gii > p.zero_sq && gjj > p.zero_sq) {
      local_off = max(local_off, abs(g[e]) / (sqrt(gii) * sqrt(gjj)));
    }
  }
  atomicMax(&wg_off, bitcast<u32>(local_off));
  workgroupBarrier();
  if (tid == 0u) {
    let measured = atomicLoad(&wg_off);
    atomicMax(&off[t], measured);
    flag = select(0u, 1u, bitcast<f32>(measured) > p.tol);
    moving[w] = flag;
  }

  // 2. Two-sided Jacobi on G, only when some index pair needs it.
  if (workgroupUniformLoad(&flag) != 0u) {
    for (var sweep = 0u; sweep < p.max_inner; sweep++) {
      for (var round = 0u; round < PAIR - 1u; round++) {
        if (tid < SVD_BLOCK) {
          let pq = circle_pair(tid, round);
          let r = rotation(g[pq.x * PAIR + pq.x], g[pq.y * PAIR + pq.y], g[pq.x * PAIR + pq.y]);
          if (r.z != 0.0) {
            atomicStore(&wg_rotated, 1u);
          }
          rot[tid] = r;
        }
        workgroupBarrier();
        // G <- J^T G J: each thread owns whole 2 x 2 blocks (rows of index pair a, columns of index pair b), so
        // updating in place is safe.
        for (var u = tid; u < SVD_BLOCK * SVD_BLOCK; u += SVD_THREADS) {
          let a = u / SVD_BLOCK;
          let b = u % SVD_BLOCK;
          let ra = circle_pair(a, round);
          let cb = circle_pair(b, round);
          let rta = rot[a];
          if (a == b) {
            // The rotated pair itself: G_pq becomes 0 and the diagonal moves by t G_pq.
            if (rta.z != 0.0) {
              let gpq = g[ra.x * PAIR + ra.y];
              g[ra.x * PAIR + ra.x] -= rta.z * gpq;
              g[ra.y * PAIR + ra.y] += rta.z * gpq;
              g[ra.x * PAIR + ra.y] = 0.0;
              g[ra.y * PAIR + ra.x] = 0.0;
            }
          } else {
            let rtb = rot[b];
            let g00 = g[ra.x * PAIR + cb.x];
            let g01 = g[ra.x * PAIR + cb.y];
            let g10 = g[ra.y * PAIR + cb.x];
            let g11 = g[ra.y * PAIR + cb.y];
            // Columns: (x_p, x_q) -> (c x_p - s x_q, s x_p + c x_q); then the same on rows.
            let h00 = rtb.x * g00 - rtb.y * g01;
            let h01 = rtb.y * g00 + rtb.x * g01;
            let h10 = rtb.x * g10 - rtb.y * g11;
            let h11 = rtb.y * g10 + rtb.x * g11;
            g[ra.x * PAIR + cb.x] = rta.x * h00 - rta.y * h10;
            g[ra.x * PAIR + cb.y] = rta.x * h01 - rta.y * h11;
            g[ra.y * PAIR + cb.x] = rta.y * h00 + rta.x * h10;
            g[ra.y * PAIR + cb.y] = rta.y * h01 + rta.x * h11;
          }
        }
        // Q <- Q J as E <- E + (E + I)(J - I) on columns (p, q), J - I = [[c - 1, s], [-s, c - 1]].
        for (var u = tid; u < PAIR * SVD_BLOCK; u += SVD_THREADS) {
          let row = u / SVD_BLOCK;
          let b = u % SVD_BLOCK;
          let cb = circle_pair(b, round);
          let rtb = rot[b];
          let e0 = qm[row * PAIR + cb.x];
          let e1 = qm[row * PAIR + cb.y];
          let y0 = e0 + select(0.0, 1.0, row == cb.x);
          let y1 = e1 + select(0.0, 1.0, row == cb.y);
          qm[row * PAIR + cb.x] = e0 + (rtb.w * y0 - rtb.y * y1);
          qm[row * PAIR + cb.y] = e1 + (rtb.y * y0 + rtb.w * y1);
        }
        workgroupBarrier();
      }
      if (tid == 0u) {
        flag = atomicLoad(&wg_rotated);
        atomicStore(&wg_rotated, 0u);
      }
      if (workgroupUniformLoad(&flag) == 0u) {
        break;
      }
    }
  }

  // 3. E out.
  for (var e = tid; e < PAIR * PAIR; e += SVD_THREADS) {
    q[base + e] = qm[e];
  }
}
