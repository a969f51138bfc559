// svd_rotate_serial: svd_rotate for CPU implementations of WebGPU (SwiftShader), where a workgroup barrier costs
// tens of microseconds: the same inputs, outputs and mathematics (see svd_rotate.wgsl for the method and for why E =
// Q - I is accumulated), but one thread per block pair works through the index pairs in row-cyclic order, in place
// in the Gram matrix buffer, with no workgroup memory and no barriers. On a GPU the parallel svd_rotate is far
// faster; src/engine/gpu/svd.ts picks this one for software adapters.
//
// Bindings (group 0):
//   0  params  uniform { pairs, batch, max_inner, tol: f32, zero_sq: f32 }
//   1  g       storage, read_write  array<f32>        [batch, pairs, PAIR, PAIR]: G of each pair (svd_gram); clobbered
//   2  q       storage, read_write  array<f32>        [batch, pairs, PAIR, PAIR]: E = Q - I of each pair, row-major
//   3  off     storage, read_write  array<atomic<u32>> [batch]: bits of the largest off seen (host zeroes it)
//   4  moving  storage, read_write  array<u32>        [batch, pairs]: 1 if the pair rotated (E != 0), else 0
// Dispatch: one thread per (matrix, pair), SVD_SERIAL_THREADS per workgroup (small, so that the few pairs of a step
// spread over the CPU's cores), on a 2-D grid of workgroups; threads past the end return.

// uses: _svd_rotation


@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> off: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> moving: array<u32>;

@compute @workgroup_size(SVD_SERIAL_THREADS)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = workgroup_index(wg, nwg) * SVD_SERIAL_THREADS + lid;
  if (w >= params.batch * params.pairs) {
    return;
  }
  let b = w * PAIR * PAIR;
  var measured = 0.0;
  for (var i = 0u; i < PAIR; i++) {
    let gii = g[b + i * PAIR + i];
    for (var j = i + 1u; j < PAIR; j++) {
      let gjj = g[b + j * PAIR + j];
      if (gii > params.zero_sq && gjj > params.zero_sq) {
        measured = max(measured, abs(g[b + i * PAIR + j]) / (sqrt(gii) * sqrt(gjj)));
      }
    }
  }
  atomicMax(&off[w / params.pairs], bitcast<u32>(measured));
  for (var e = 0u; e < PAIR * PAIR; e++) {
    q[b + e] = 0.0;
  }
  let work = measured > params.tol;
  moving[w] = select(0u, 1u, work);
  if (!work) {
    return;
  }
  for (var sweep = 0u; sweep < params.max_inner; sweep++) {
    var rotated = false;
    for (var p = 0u; p < PAIR - 1u; p++) {
      for (var r = p + 1u; r < PAIR; r++) {
        let rt = rotation(g[b + p * PAIR + p], g[b + r * PAIR + r], g[b + p * PAIR + r]);
        if (rt.z == 0.0) {
          continue;
        }
        rotated = true;
        for (var x = 0u; x < PAIR; x++) {
          // G <- J^T G J outside the pair's own 2 x 2 block (kept symmetric).
          if (x != p && x != r) {
            let gxp = g[b + x * PAIR + p];
            let gxr = g[b + x * PAIR + r];
            let nxp = rt.x * gxp - rt.y * gxr;
            let nxr = rt.y * gxp + rt.x * gxr;
            g[b + x * PAIR + p] = nxp;
            g[b + p * PAIR + x] = nxp;
            g[b + x * PAIR + r] = nxr;
            g[b + r * PAIR + x] = nxr;
          }
          // E <- E + (E + I)(J - I) on columns (p, r).
          let e0 = q[b + x * PAIR + p];
          let e1 = q[b + x * PAIR + r];
          let y0 = e0 + select(0.0, 1.0, x == p);
          let y1 = e1 + select(0.0, 1.0, x == r);
          q[b + x * PAIR + p] = e0 + (rt.w * y0 - rt.y * y1);
          q[b + x * PAIR + r] = e1 + (rt.y * y0 + rt.w * y1);
        }
        // The pair itself: G_pr becomes 0 and the diagonal moves by t G_pr.
        let gpr = g[b + p * PAIR + r];
        g[b + p * PAIR + p] -= rt.z * gpr;
        g[b + r * PAIR + r] += rt.z * gpr;
        g[b + p * PAIR + r] = 0.0;
        g[b + r * PAIR + p] = 0.0;
      }
    }
    if (!rotated) {
      break;
    }
  }
}
