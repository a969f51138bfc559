// svd_norms: squared norm of the long-side part of every row of the block Jacobi working matrix X
// (src/engine/gpu/svd.ts): after convergence these are the squared (scaled) singular values.
//
// Bindings (group 0):
//   0  params  uniform { rows, stride4, len4, batch }
//   1  x       storage, read        array<vec4<f32>>  [batch, rows, stride4]
//   2  out     storage, read_write  array<f32>        [batch, rows]: sum of squares of row j's first 4 * len4 columns
// Dispatch: one thread per row, WORKGROUP_SIZE per workgroup on a 2-D grid (flat_index); threads past the end
// return. f32 sums of vec4 dot products.

struct Params {
  rows: u32,
  stride4: u32,
  len4: u32,
  batch: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = params;
  let row = flat_index(wg, nwg, lid);
  if (row >= p.batch * p.rows) {
    return;
  }
  let base = row * p.stride4;
  var acc = 0.0;
  for (var l = 0u; l < p.len4; l++) {
    let v = x[base + l];
    acc += dot(v, v);
  }
  out[row] = acc;
}
