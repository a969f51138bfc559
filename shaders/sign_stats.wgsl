// sign_stats: per-workgroup partial sign statistics over the columns of a [rows, numel] stack (the definitions of
// src/engine/reference/metrics.ts): with pos_j / neg_j the numbers of rows whose entry at column j is positive /
// negative (+-0 and NaN are neither; read from the bits),
//   conflicts = number of columns with pos_j > 0 and neg_j > 0
//   multi     = number of columns with pos_j + neg_j >= 2
//   agreement = sum over columns of the TIES sign agreement ratio |pos_j - neg_j| / (pos_j + neg_j), 1 for a
//               column with no signed entry; computed as f32(|pos - neg|) * recip[pos + neg] with
//               recip[d] = round_f32(1 / d) from the host (exact rounding on every device, unlike WGSL division)
// One thread per block of REDUCTION_BLOCK consecutive columns walks its block a quad of columns per step (QuadRows:
// each row starts on a whole vec4), the agreement sum in four running f32 sums (column j into sum j % 4, in order;
// then (s0 + s1) + (s2 + s3), as gram; products unfused), and writes one partial; the host adds the partials in
// float64. No workgroup barriers (see row_stats).
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, zero: u32, quads: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK), zero = 0 (see `unfused` in common.wgsl), quads = ceil(numel / 4)
//   1  recip     storage, read        array<f32>   [rows + 1], recip[d] = round_f32(1 / d) (recip[0] unused)
//   2  data      storage, read        array<vec4<u32>>   [rows, quads] f32 bit patterns: row r's from vec4 r * quads
//                                                        (the words past numel are not read)
//   3  partials  storage, read_write  array<u32>   [blocks, 3]: conflicts, multi, bits of the f32 agreement sum
// Dispatch: one thread per block on a 2-D grid of WORKGROUP_SIZE-thread workgroups (flat_index); surplus threads
// return.

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  zero: u32,
  quads: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> recip: array<f32>;
@group(0) @binding(2) var<storage, read> data: array<vec4<u32>>;
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
  var conflicts = vec4<u32>(0u);
  var multi = vec4<u32>(0u);
  var ratio = vec4<f32>(0.0);
  let span = block_span(k, params.numel);
  let one = vec4<u32>(1u);
  // span.x is a multiple of 4: quad q holds columns 4q..4q+3; a partial last quad is masked.
  for (var q = span.x / 4u; q < (span.y + 3u) / 4u; q++) {
    var pos = vec4<u32>(0u);
    var neg = vec4<u32>(0u);
    for (var r = 0u; r < params.rows; r++) {
      let bits = data[r * params.quads + q];
      let mag = bits & vec4<u32>(0x7fffffffu);
      let signed = (mag != vec4<u32>(0u)) & (mag <= vec4<u32>(0x7f800000u));
      let negative = (bits >> vec4<u32>(31u)) == one;
      neg += select(vec4<u32>(0u), one, signed & negative);
      pos += select(vec4<u32>(0u), one, signed & !negative);
    }
    let live = lanes_below(4u * q, span.y);
    let total = pos + neg;
    conflicts += select(vec4<u32>(0u), one, live & (pos > vec4<u32>(0u)) & (neg > vec4<u32>(0u)));
    multi += select(vec4<u32>(0u), one, live & (total >= vec4<u32>(2u)));
    let r = vec4<f32>(recip[total.x], recip[total.y], recip[total.z], recip[total.w]);
    let agree = select(unfused4(vec4<f32>(max(pos, neg) - min(pos, neg)) * r, params.zero), vec4<f32>(1.0), total == vec4<u32>(0u));
    ratio = select(ratio, ratio + agree, live);
  }
  partials[3u * k] = dot(conflicts, one);
  partials[3u * k + 1u] = dot(multi, one);
  partials[3u * k + 2u] = bitcast<u32>(lane_total(ratio));
}
