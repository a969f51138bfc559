// vit_l2_normalize: scales every row to unit L2 norm and then by `scale`:
//   out[r, :] = input[r, :] * scale / max(||input[r, :]||, 1e-12)
// (the 1e-12 floor is torch.nn.functional.normalize's). Used for CLIP zero-shot heads: the features with scale =
// logit scale and the class embeddings with scale = 1, so that a matmul of the two gives the logits.
//
// Bindings (group 0):
//   0  params  uniform { rows: u32, dim: u32, scale: f32 }
//   1  input   storage, read        array<f32>   [rows, dim]
//   2  out     storage, read_write  array<f32>   [rows, dim]
// Dispatch: one thread per row, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index); no barriers.
// Bounds: threads with r >= rows do nothing.

struct Params {
  rows: u32,
  dim: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = flat_index(wg, nwg, lid);
  if (r >= params.rows) {
    return;
  }
  let start = r * params.dim;
  var sq = 0.0;
  for (var i = 0u; i < params.dim; i++) {
    let x = input[start + i];
    sq += x * x;
  }
  let factor = params.scale / max(sqrt(sq), 1e-12);
  for (var i = 0u; i < params.dim; i++) {
    out[start + i] = input[start + i] * factor;
  }
}
