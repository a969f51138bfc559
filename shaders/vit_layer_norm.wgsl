// vit_layer_norm: layer norm over rows.   out[r, :] = (x_r - mean) / sqrt(var + eps) * gamma + beta,
// where x_r = input[r * in_stride .. r * in_stride + dim) and var is the biased (1 / dim) variance, computed in
// two passes (mean first, then squared deviations) like PyTorch. in_stride > dim gathers rows, e.g. the CLS token
// of every image (in_stride = T * D) for post_layernorm.
//
// Bindings (group 0):
//   0  params  uniform { rows: u32, dim: u32, in_stride: u32, eps: f32 }
//   1  gamma   storage, read        array<f32>   [dim]
//   2  beta    storage, read        array<f32>   [dim]
//   3  input   storage, read        array<f32>   rows read in_stride elements apart
//   4  out     storage, read_write  array<f32>   [rows, dim], dense (a different buffer from input)
// Dispatch: one thread per row, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index). A thread walks
// its row three times; no workgroup memory or barriers (layer norm is a small share of a transformer's work, next
// to the matmuls). Bounds: threads with r >= rows do nothing.

struct Params {
  rows: u32,
  dim: u32,
  in_stride: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> input: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

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
  let dim = params.dim;
  let src = r * params.in_stride;
  var sum = 0.0;
  for (var i = 0u; i < dim; i++) {
    sum += input[src + i];
  }
  let mean = sum / f32(dim);
  var sq = 0.0;
  for (var i = 0u; i < dim; i++) {
    let dev = input[src + i] - mean;
    sq += dev * dev;
  }
  let inv = 1.0 / sqrt(sq / f32(dim) + params.eps);
  let dst = r * dim;
  for (var i = 0u; i < dim; i++) {
    out[dst + i] = (input[src + i] - mean) * inv * gamma[i] + beta[i];
  }
}
