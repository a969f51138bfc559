// partials_sum: adds each run of PARTIALS_GROUP consecutive per-thread partials of a fused output kernel (linear_merge,
// magmax_output, consensus_output, ties_output), so a chunk's partials read back PARTIALS_GROUP times smaller:
//   sums[r * groups + g] = p[r * threads + g * G] + p[r * threads + g * G + 1] + ... + p[r * threads + min(threads, (g + 1) * G) - 1]
// in f32, in that order (G = PARTIALS_GROUP; the last group of a row may be shorter). A fused kernel's partial covers
// LINEAR_BLOCK = 16 elements, so each sum covers REDUCTION_BLOCK = 256, as the reduction kernels' partials do; the
// host still adds them up in float64 (foldLinearPartials). The partials are sums of squares and counts (>= 0 or NaN).
// Twin: reference/linearMerge.ts partialsSumRef.
//
// Bindings (group 0):
//   0  params    uniform { threads: u32, groups: u32, rows: u32, unused: u32 }   groups = ceil(threads / G)
//   1  partials  storage, read        array<f32>   [rows, threads]
//   2  sums      storage, read_write  array<f32>   [rows, groups]
// Dispatch: one thread per sum, rows * groups threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return. Neighbouring threads read neighbouring runs, so a GPU's loads stay coalesced.

struct Params {
  threads: u32,
  groups: u32,
  rows: u32,
  unused: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  if (k >= params.rows * params.groups) {
    return;
  }
  let row = k / params.groups;
  let first = (k % params.groups) * PARTIALS_GROUP;
  let end = row * params.threads + min(params.threads, first + PARTIALS_GROUP);
  var i = row * params.threads + first;
  var sum = partials[i];
  for (i = i + 1u; i < end; i++) {
    sum += partials[i];
  }
  sums[k] = sum;
}
