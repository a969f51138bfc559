// svd_init: the working matrix X of the block Jacobi SVD (src/engine/gpu/svd.ts) for a batch of m x n matrices.
//
// Row j < k of X holds [w_j, e_j]: w_j (columns 0..len-1) is the j-th vector of A along its long side, times
// scale[t] (column j of A when tall = 1, row j when tall = 0), and e_j (columns short_at..short_at+k-1) is row j
// of the k x k identity, the accumulated rotation. Everything else (padding rows j >= k, padding columns) is 0.
//
// Bindings (group 0):
//   0  params  uniform { m, n, k, len, short_at, stride, rows, batch, tall }
//   1  a       storage, read        array<f32>   [batch, m, n], row-major
//   2  scale   storage, read        array<f32>   [batch]: 1 / ||A_t||_F (1 for a zero matrix)
//   3  x       storage, read_write  array<f32>   [batch, rows, stride]
// Dispatch: one thread per element of x, WORKGROUP_SIZE per workgroup on a 2-D grid (flat_index).
// Bounds: threads past batch * rows * stride return.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  len: u32,
  short_at: u32,
  stride: u32,
  rows: u32,
  batch: u32,
  tall: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = params;
  let idx = flat_index(wg, nwg, lid);
  if (idx >= p.batch * p.rows * p.stride) {
    return;
  }
  let t = idx / (p.rows * p.stride);
  let j = (idx / p.stride) % p.rows;
  let col = idx % p.stride;
  var val = 0.0;
  if (j < p.k) {
    if (col < p.len) {
      let at = select(j * p.n + col, col * p.n + j, p.tall != 0u);
      val = scale[t] * a[t * p.m * p.n + at];
    } else if (col == p.short_at + j) {
      val = 1.0;
    }
  }
  x[idx] = val;
}
