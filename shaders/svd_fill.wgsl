// svd_fill: gives the zero vectors of the block Jacobi working matrix X (src/engine/gpu/svd.ts) a tiny random
// long side, so that further sweeps turn them into unit-norm-able vectors orthogonal to all others: the singular
// vectors of zero singular values, which have no defined direction but must complete an orthonormal set.
//   X[t][j][c] += amplitude * (2 * rng_uniform(key, j * len + c) - 1)   for c < len, where fill[t * rows + j] != 0
// The accumulated-rotation part of the row is left as it is (it stays an orthonormal column).
//
// Bindings (group 0):
//   0  params  uniform { len, stride, rows, batch, key, amplitude: f32 }
//   1  fill    storage, read        array<u32>  [batch, rows]: 1 = fill this row
//   2  x       storage, read_write  array<f32>  [batch, rows, stride]
// Dispatch: one thread per long-side element (batch * rows * len), WORKGROUP_SIZE per workgroup on a 2-D grid
// (flat_index); threads past the end and rows not flagged return.

struct Params {
  len: u32,
  stride: u32,
  rows: u32,
  batch: u32,
  key: u32,
  amplitude: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> fill: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = params;
  let idx = flat_index(wg, nwg, lid);
  if (idx >= p.batch * p.rows * p.len) {
    return;
  }
  let c = idx % p.len;
  let row = idx / p.len;
  if (fill[row] == 0u) {
    return;
  }
  let j = row % p.rows;
  x[row * p.stride + c] += p.amplitude * (2.0 * rng_uniform(p.key, j * p.len + c) - 1.0);
}
