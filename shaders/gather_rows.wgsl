// gather_rows: copies chosen rows of a table into a dense output:
//   out[r, d] = table[index[r], d]    for r < rows, d < dim
// The text tower uses it twice: token embeddings (table = token_embedding [vocab, D], index = token ids) and
// end-of-text pooling (table = the residual stream [B * T, D], index = b * T + eos_b).
// Indices are checked against the table's rows on the host before the launch.
//
// Bindings (group 0):
//   0  params  uniform { total: u32, dim: u32 }   total = rows * dim
//   1  table   storage, read        array<f32>   [table rows, dim]
//   2  index   storage, read        array<u32>   [rows]
//   3  out     storage, read_write  array<f32>   [rows, dim]
// Dispatch: one thread per element of out, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with index >= total do nothing.

struct Params {
  total: u32,
  dim: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = flat_index(wg, nwg, lid);
  if (idx >= params.total) {
    return;
  }
  let r = idx / params.dim;
  let d = idx % params.dim;
  out[idx] = table[index[r] * params.dim + d];
}
