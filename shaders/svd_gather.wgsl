// svd_gather: writes one factor of the SVD (src/engine/gpu/svd.ts) from the block Jacobi working matrix X:
//   out[t][i][c] = X[t][perm[t][c]][first + i] * mult[t][c]     (i < len, c < k)
// i.e. the rows of X that hold the singular vectors, in descending singular-value order, laid out as columns,
// scaled (1 / norm normalises the long side; 1 leaves the accumulated rotation as it is).
//
// Bindings (group 0):
//   0  params  uniform { len, k, stride, rows, first, batch }
//   1  x       storage, read        array<f32>  [batch, rows, stride]
//   2  perm    storage, read        array<u32>  [batch, k]: row of X for output column c
//   3  mult    storage, read        array<f32>  [batch, k]: factor for output column c
//   4  out     storage, read_write  array<f32>  [batch, len, k], row-major
// Dispatch: one thread per output element, WORKGROUP_SIZE per workgroup on a 2-D grid (flat_index); threads past
// the end return.

struct Params {
  len: u32,
  k: u32,
  stride: u32,
  rows: u32,
  first: u32,
  batch: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read> mult: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = params;
  let idx = flat_index(wg, nwg, lid);
  if (idx >= p.batch * p.len * p.k) {
    return;
  }
  let c = idx % p.k;
  let i = (idx / p.k) % p.len;
  let t = idx / (p.k * p.len);
  let row = perm[t * p.k + c];
  out[idx] = x[(t * p.rows + row) * p.stride + p.first + i] * mult[t * p.k + c];
}
