// opcm_mask: picks the coefficients that the OPCM projection of one Linear weight removes
// (src/engine/gpu/opcmProject.ts, methods.md 1.4). P = U^T tau V is k x k; the removed part is
//   Q[i][j] = P[i][j]  if (i < r and j < r)      the r x r block on the dominant singular pairs
//                      or (i == j and i < diag)  the diagonal on the numerically nonzero pairs (diag = 0: none)
//           = 0        otherwise
// and per row i the statistics stats[i] = (sum_{j < r} P[i][j]^2 if i < r else 0, P[i][i]).
//
// Bindings (group 0):
//   0  params  uniform { k, r, diag }
//   1  p       storage, read        array<f32>        [k, k], row-major
//   2  q       storage, read_write  array<f32>        [k, k], row-major
//   3  stats   storage, read_write  array<vec2<f32>>  [k]
// Dispatch: one thread per row i, WORKGROUP_SIZE per workgroup on a 2-D grid (flat_index); threads with i >= k
// return.

struct Params {
  k: u32,
  r: u32,
  diag: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec2<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = params.k;
  let i = flat_index(wg, nwg, lid);
  if (i >= k) {
    return;
  }
  var block_sq = 0.0;
  for (var j = 0u; j < k; j++) {
    let v = p[i * k + j];
    let in_block = i < params.r && j < params.r;
    if (in_block) {
      block_sq += v * v;
    }
    q[i * k + j] = select(0.0, v, in_block || (i == j && i < params.diag));
  }
  stats[i] = vec2<f32>(block_sq, p[i * k + i]);
}
