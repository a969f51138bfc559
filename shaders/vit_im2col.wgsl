// vit_im2col: unfolds images into one row per patch, so that the patch embedding (a stride-P convolution without
// bias) becomes a matmul with the conv weight [D, C, P, P] read as [D, C * P * P].
//   cols[(b * N + gy * G + gx) * CPP + (c * P + i) * P + j] = images[b, c, gy * P + i, gx * P + j]
// with G = image / P patches per side, N = G * G patches per image (row by row), CPP = C * P * P.
//
// Bindings (group 0):
//   0  params  uniform { total: u32, channels: u32, image: u32, patch_size: u32, grid: u32 }   total = B * N * CPP
//   1  images  storage, read        array<f32>   [B, C, image, image], row-major
//   2  cols    storage, read_write  array<f32>   [B * N, CPP]
// Dispatch: one thread per element of cols, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with index >= total do nothing.

struct Params {
  total: u32,
  channels: u32,
  image: u32,
  patch_size: u32,
  grid: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> images: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

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
  let p = params.patch_size;
  let pp = p * p;
  let cpp = params.channels * pp;
  let col = idx % cpp;
  let row = idx / cpp;
  let patches = params.grid * params.grid;
  let b = row / patches;
  let patch_index = row % patches;
  let y = (patch_index / params.grid) * p + (col % pp) / p;
  let x = (patch_index % params.grid) * p + col % p;
  let c = col / pp;
  cols[idx] = images[((b * params.channels + c) * params.image + y) * params.image + x];
}
