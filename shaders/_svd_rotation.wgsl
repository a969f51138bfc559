// _svd_rotation.wgsl: a part, not a kernel (see src/engine/gpu/shaders.ts). The shared pieces of svd_rotate and
// svd_rotate_serial, which differ only in how they schedule the rotations: PAIR, their uniform Params, and the
// rotation formula. A kernel with the line `// uses: _svd_rotation` declares `params: Params` at group 0, binding 0.

const PAIR: u32 = 2u * SVD_BLOCK;

struct Params {
  pairs: u32,
  batch: u32,
  max_inner: u32,
  tol: f32,
  zero_sq: f32,
}

// The rotation of indices (p, q) of the current G as (c, s, t, c - 1); t = 0 (identity) when the pair needs none:
// a zero vector, or already orthogonal to tol. t is the smaller root of t^2 + 2 zeta t - 1 = 0 (see svd_rotate.wgsl
// for why c - 1 is computed on its own).
fn rotation(gpp: f32, gqq: f32, gpq: f32) -> vec4<f32> {
  if (gpp <= params.zero_sq || gqq <= params.zero_sq || abs(gpq) <= params.tol * sqrt(gpp) * sqrt(gqq)) {
    return vec4<f32>(1.0, 0.0, 0.0, 0.0);
  }
  let zeta = (gqq - gpp) / (2.0 * gpq);
  let sg = select(-1.0, 1.0, zeta >= 0.0);
  // For huge |zeta| (zeta^2 would overflow) t = 1 / (2 zeta) to f32 precision.
  let tn = select(sg / (abs(zeta) + sqrt(1.0 + zeta * zeta)), 0.5 / zeta, abs(zeta) > 1e18);
  let h = sqrt(1.0 + tn * tn);
  return vec4<f32>(1.0 / h, tn / h, tn, -tn * tn / (h * (1.0 + h)));
}
