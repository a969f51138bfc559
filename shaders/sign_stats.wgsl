// sign_stats: per-workgroup partial sign statistics over the columns of a [rows, numel] stack (the definitions of
// src/engine/reference/metrics.ts): with pos_j / neg_j the numbers of rows whose entry at column j is positive /
// negative (+-0 and NaN are neither; read from the bits),
//   conflicts = number of columns with pos_j > 0 and neg_j > 0
//   multi     = number of columns with pos_j + neg_j >= 2
//   agreement = sum over columns of the TIES sign agreement ratio |pos_j - neg_j| / (pos_j + neg_j), 1 for a
//               column with no signed entry; computed as f32(|pos - neg|) * recip[pos + neg] with
//               recip[d] = round_f32(1 / d) from the host (exact rounding on every device, unlike WGSL division)
// One thread per block of REDUCTION_BLOCK consecutive columns adds its block in column order (the agreement sum in
// f32, products unfused) and writes one partial; the host adds the partials in float64. No workgroup barriers (see
// row_stats).
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, zero: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK), zero = 0 (see `unfused` in common.wgsl)
//   1  recip     storage, read        array<f32>   [rows + 1], recip[d] = round_f32(1 / d) (recip[0] unused)
//   2  data      storage, read        array<u32>   [rows, numel] f32 bit patterns, row-major
//   3  partials  storage, read_write  array<u32>   [blocks, 3]: conflicts, multi, bits of the f32 agreement sum
// Dispatch: one thread per block on a 2-D grid of WORKGROUP_SIZE-thread workgroups (flat_index); surplus threads
// return.

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> recip: array<f32>;
@group(0) @binding(2) var<storage, read> data: array<u32>;
@group(0) @binding(3) var<storage, read_write> partials: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  if (k >= params.blocks) {
    return;
  }
  var conflict_count = 0u;
  var multi_count = 0u;
  var ratio_sum = 0.0;
  let span = block_span(k, params.numel);
  for (var j = span.x; j < span.y; j++) {
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
  partials[3u * k] = conflict_count;
  partials[3u * k + 1u] = multi_count;
  partials[3u * k + 2u] = bitcast<u32>(ratio_sum);
}
