// sign_stats: per-workgroup partial sign statistics over the columns of a [rows, numel] stack (the definitions of
// src/engine/reference/metrics.ts): with pos_j / neg_j the numbers of rows whose entry at column j is positive /
// negative (+-0 and NaN are neither; read from the bits),
//   conflicts = number of columns with pos_j > 0 and neg_j > 0
//   multi     = number of columns with pos_j + neg_j >= 2
//   agreement = sum over columns of the TIES sign agreement ratio |pos_j - neg_j| / (pos_j + neg_j), 1 for a
//               column with no signed entry; computed as f32(|pos - neg|) * recip[pos + neg] with
//               recip[d] = round_f32(1 / d) from the host (exact rounding on every device, unlike WGSL division)
// Each thread accumulates its strided share of the chunk in column order (the agreement sum in f32, products
// unfused), then the workgroup adds the 256 thread values with a tree; the host adds the partials in float64.
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, chunks: u32, chunk: u32, zero: u32 }
//                chunk = columns per workgroup (a multiple of WORKGROUP_SIZE), chunks = ceil(numel / chunk),
//                zero = 0 (see `unfused` in common.wgsl)
//   1  recip     storage, read        array<f32>   [rows + 1], recip[d] = round_f32(1 / d) (recip[0] unused)
//   2  data      storage, read        array<u32>   [rows, numel] f32 bit patterns, row-major
//   3  partials  storage, read_write  array<u32>   [chunks, 3]: conflicts, multi, bits of the f32 agreement sum
// Dispatch: one workgroup per chunk on a 2-D grid (workgroup_index).
// Bounds: columns past numel count nothing; surplus workgroups write nothing. Every thread reaches every barrier.

struct Params {
  numel: u32,
  rows: u32,
  chunks: u32,
  chunk: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> recip: array<f32>;
@group(0) @binding(2) var<storage, read> data: array<u32>;
@group(0) @binding(3) var<storage, read_write> partials: array<u32>;

var<workgroup> conflicts: array<u32, WORKGROUP_SIZE>;
var<workgroup> multi: array<u32, WORKGROUP_SIZE>;
var<workgroup> agreement: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = workgroup_index(wg, nwg);
  let valid = w < params.chunks;
  let start = w * params.chunk;
  var conflict_count = 0u;
  var multi_count = 0u;
  var ratio_sum = 0.0;
  if (valid) {
    for (var k = lid; k < params.chunk; k += WORKGROUP_SIZE) {
      let j = start + k;
      if (j < params.numel) {
        var pos = 0u;
        var neg = 0u;
        for (var r = 0u; r < params.rows; r++) {
          let bits = data[r * params.numel + j];
          let mag = bits & 0x7fffffffu;
          if (mag != 0u && mag <= 0x7f800000u) {
            if ((bits >> 31u) == 1u) {
              neg++;
            } else {
              pos++;
            }
          }
        }
        let total = pos + neg;
        conflict_count += select(0u, 1u, pos > 0u && neg > 0u);
        multi_count += select(0u, 1u, total >= 2u);
        if (total == 0u) {
          ratio_sum += 1.0;
        } else {
          ratio_sum += unfused(f32(max(pos, neg) - min(pos, neg)) * recip[total], params.zero);
        }
      }
    }
  }
  conflicts[lid] = conflict_count;
  multi[lid] = multi_count;
  agreement[lid] = ratio_sum;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      conflicts[lid] += conflicts[lid + stride];
      multi[lid] += multi[lid + stride];
      agreement[lid] += agreement[lid + stride];
    }
    workgroupBarrier();
  }
  if (valid && lid == 0u) {
    partials[3u * w] = conflicts[0];
    partials[3u * w + 1u] = multi[0];
    partials[3u * w + 2u] = bitcast<u32>(agreement[0]);
  }
}
