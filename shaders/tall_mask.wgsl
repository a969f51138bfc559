// tall_mask: TALL masks and their usage counts (src/engine/reference/methods/masks.ts):
//   m_r[j]    = |tau[r, j]| > lambdas[r] * |mtl[j] - tau[r, j]|     (strict, in f32: one rounded subtraction,
//                                                                     one rounded product, then the compare)
//   counts[j] = number of rows r with m_r[j]                         (how many tasks use weight j, 0..rows)
//   bits[j]   = bit r set iff m_r[j]   (only when want_bits != 0; the host allows that for rows <= 32 only)
// mtl is the multi-task vector at scale 1. Inputs should be finite: WGSL leaves comparisons with NaN undefined.
//
// Bindings (group 0):
//   0  params   uniform { numel: u32, rows: u32, want_bits: u32 }
//   1  lambdas  storage, read        array<f32>   [rows], this tensor's lambda per task
//   2  tau      storage, read        array<f32>   [rows, numel], row-major task vectors
//   3  mtl      storage, read        array<f32>   [numel]
//   4  counts   storage, read_write  array<u32>   [numel]
//   5  bits     storage, read_write  array<u32>   [numel] when want_bits != 0 (else any small unused buffer)
// Dispatch: one thread per column j, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing.

struct Params {
  numel: u32,
  rows: u32,
  want_bits: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> lambdas: array<f32>;
@group(0) @binding(2) var<storage, read> tau: array<f32>;
@group(0) @binding(3) var<storage, read> mtl: array<f32>;
@group(0) @binding(4) var<storage, read_write> counts: array<u32>;
@group(0) @binding(5) var<storage, read_write> bits: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = flat_index(wg, nwg, lid);
  if (j >= params.numel) {
    return;
  }
  let m = mtl[j];
  var count = 0u;
  var mask = 0u;
  for (var r = 0u; r < params.rows; r++) {
    let x = tau[r * params.numel + j];
    if (abs(x) > lambdas[r] * abs(m - x)) {
      count++;
      // Shift amounts wrap at 32 in WGSL: rows past 31 never get a bit (the host refuses bits for them).
      if (r < 32u) {
        mask |= 1u << r;
      }
    }
  }
  counts[j] = count;
  if (params.want_bits != 0u) {
    bits[j] = mask;
  }
}
