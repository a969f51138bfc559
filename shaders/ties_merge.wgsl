// ties_merge: TIES trim, sign election and disjoint merge in one pass, in place: untrimmed task vectors in,
// per-task contributions out, bit for bit trim_mask followed by disjoint_merge (see those kernels for the rules):
//   x'[r, j] = (bits(x) & 0x7fffffff) >= thresholds[r] ? x : +0
//   s_j      = sum over rows of x'[r, j], in f32 from 0 in row order; gamma_j from s_j as in disjoint_merge
//   mode SUM / MEAN / MAX on the agreeing x' as in disjoint_merge (MEAN multiplies by recip[n_j] when n_j >= 2)
// Four columns per thread in vec4 arithmetic: CPU-emulated devices run straight vec4 code several times faster
// than one element per step, and one pass replaces two full reads and writes of the stack.
//
// Bindings (group 0):
//   0  params      uniform { numel, quads, rows, mode, rule, majority: i32 }
//                  quads = row stride in vec4 words (>= numel / 4); mode 0 SUM, 1 MEAN, 2 MAX; rule 0 MAJORITY, 1 PLUS
//   1  thresholds  storage, read        array<u32>        one magnitude bit pattern per row (0 keeps the row)
//   2  recip       storage, read        array<f32>        [rows + 1], recip[n] = round_f32(1 / n) (recip[0] unused)
//   3  stack       storage, read_write  array<vec4<u32>>  [rows, quads] vec4s of f32 bit patterns, row-major
// Dispatch: one thread per column quad (quads threads, WORKGROUP_SIZE per workgroup) on a 2-D grid (flat_index).
// Bounds: threads past quads return; words of a row past numel are rewritten with values the host never reads
// (they belong to the aligned copy's padding, see QuadRows).

struct Params {
  numel: u32,
  quads: u32,
  rows: u32,
  mode: u32,
  rule: u32,
  majority: i32,
}

const MODE_SUM: u32 = 0u;
const MODE_MEAN: u32 = 1u;
const RULE_PLUS: u32 = 1u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> thresholds: array<u32>;
@group(0) @binding(2) var<storage, read> recip: array<f32>;
@group(0) @binding(3) var<storage, read_write> stack: array<vec4<u32>>;

// Row r's four values after the trim.
fn trimmed(r: u32, q: u32) -> vec4<u32> {
  return ties_trim4(stack[r * params.quads + q], thresholds[r]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let q = flat_index(wg, nwg, lid);
  if (q >= params.quads) {
    return;
  }
  let rows = params.rows;
  var s = vec4<f32>(0.0);
  for (var r = 0u; r < rows; r++) {
    s += bitcast<vec4<f32>>(trimmed(r, q));
  }
  let gamma = ties_elect4(s, params.rule == RULE_PLUS, params.majority);
  if (params.mode == MODE_SUM) {
    for (var r = 0u; r < rows; r++) {
      let x = trimmed(r, q);
      stack[r * params.quads + q] = select(vec4<u32>(0u), x, ties_agrees4(x, gamma));
    }
    return;
  }
  if (params.mode == MODE_MEAN) {
    var count = vec4<u32>(0u);
    for (var r = 0u; r < rows; r++) {
      count += select(vec4<u32>(0u), vec4<u32>(1u), ties_agrees4(trimmed(r, q), gamma));
    }
    let factor = vec4<f32>(recip[count.x], recip[count.y], recip[count.z], recip[count.w]);
    let scaled = count > vec4<u32>(1u);
    for (var r = 0u; r < rows; r++) {
      let x = trimmed(r, q);
      let kept = select(x, bitcast<vec4<u32>>(bitcast<vec4<f32>>(x) * factor), scaled);
      stack[r * params.quads + q] = select(vec4<u32>(0u), kept, ties_agrees4(x, gamma));
    }
    return;
  }
  // MAX: the first agreeing row of strictly largest magnitude bits.
  var best = vec4<u32>(rows);
  var best_mag = vec4<u32>(0u);
  for (var r = 0u; r < rows; r++) {
    let x = trimmed(r, q);
    let mag = x & vec4<u32>(TIES_MAG);
    let better = ties_agrees4(x, gamma) & ((best == vec4<u32>(rows)) | (mag > best_mag));
    best = select(best, vec4<u32>(r), better);
    best_mag = select(best_mag, mag, better);
  }
  for (var r = 0u; r < rows; r++) {
    stack[r * params.quads + q] = select(vec4<u32>(0u), trimmed(r, q), best == vec4<u32>(r));
  }
}
