// vit_embed: finishes the token embeddings in place. The patch matmul has already written patch t - 1 of image b
// into token row b * T + t (t >= 1); this kernel writes the CLS token into row b * T and adds the position
// embeddings to every row:
//   x[b, 0, d] = cls[d] + pos[0, d];    x[b, t, d] = x[b, t, d] + pos[t, d]  (t >= 1)
//
// Bindings (group 0):
//   0  params  uniform { total: u32, tokens: u32, dim: u32 }   total = B * T * D
//   1  cls     storage, read        array<f32>   [D]     embeddings.class_embedding
//   2  pos     storage, read        array<f32>   [T, D]  embeddings.position_embedding.weight
//   3  x       storage, read_write  array<f32>   [B, T, D], row-major
// Dispatch: one thread per element of x, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with index >= total do nothing.

struct Params {
  total: u32,
  tokens: u32,
  dim: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cls: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

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
  let d = idx % params.dim;
  let t = (idx / params.dim) % params.tokens;
  var v: f32;
  if (t == 0u) {
    v = cls[d];
  } else {
    v = x[idx];
  }
  x[idx] = v + pos[t * params.dim + d];
}
