// disjoint_merge: TIES sign election and disjoint merge, in place: trimmed task vectors in, per-task contributions
// out (the merged delta is sum over rows of coeff_r * c_r, see combine.wgsl). Semantics of
// src/engine/reference/methods/signElect.ts:
//   s_j     = sum over rows of x[r, j], in f32 from 0 in row order
//   gamma_j = sign(s_j); when s_j is +-0: rule MAJORITY gives `majority` (-1, 0 or +1, from sign_sum over the
//             whole model), rule PLUS gives +1 (mergekit: s >= 0 -> +1). A NaN s_j elects nothing under MAJORITY
//             and -1 under PLUS, as the float64 reference's comparisons do.
//   row r agrees at j iff x is non-zero, not NaN, and its sign bit matches gamma_j (gamma 0: nobody agrees)
//   mode SUM:  c = x where r agrees, else 0
//   mode MEAN: c = x * recip[n_j] where r agrees (n_j = number of agreeing rows), else 0
//   mode MAX:  only the agreeing row with the largest |x| keeps x (the lowest row wins ties), others 0
// Signs and magnitudes are compared on bits, so only s_j and the MEAN product are float arithmetic.
// recip[n] is round_f32(1 / n) computed on the host: WGSL division may be off by 2.5 ulp, a product is rounded
// exactly, so every device gives the twin's result (within 1 ulp of the exact quotient; exact for n = 1 and
// powers of two; n = 1 skips the multiply).
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, rows: u32, mode: u32, rule: u32, majority: i32 }
//              mode 0 SUM, 1 MEAN, 2 MAX; rule 0 MAJORITY, 1 PLUS
//   1  recip   storage, read        array<f32>   [rows + 1], recip[n] = round_f32(1 / n) (recip[0] unused)
//   2  stack   storage, read_write  array<f32>   [rows, numel], row-major
// Dispatch: one thread per column j, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing. Kept entries keep their exact bits (except MEAN with n >= 2);
// dropped entries become +0.

struct Params {
  numel: u32,
  rows: u32,
  mode: u32,
  rule: u32,
  majority: i32,
}

const MODE_SUM: u32 = 0u;
const MODE_MEAN: u32 = 1u;
const RULE_PLUS: u32 = 1u;
// A gamma no row can match (a NaN sum under the majority rule).
const NO_SIGN: i32 = 2;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> recip: array<f32>;
@group(0) @binding(2) var<storage, read_write> stack: array<f32>;

fn elected_sign(s: f32) -> i32 {
  let bits = bitcast<u32>(s);
  let mag = bits & 0x7fffffffu;
  let negative = (bits >> 31u) == 1u;
  if (mag > 0x7f800000u) {
    return select(NO_SIGN, -1, params.rule == RULE_PLUS);
  }
  if (mag == 0u) {
    return select(params.majority, 1, params.rule == RULE_PLUS);
  }
  return select(1, -1, negative);
}

fn agrees(x: f32, gamma: i32) -> bool {
  let bits = bitcast<u32>(x);
  let mag = bits & 0x7fffffffu;
  return mag != 0u && mag <= 0x7f800000u && select(1, -1, (bits >> 31u) == 1u) == gamma;
}

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
  let n = params.numel;
  var s = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    s += stack[r * n + j];
  }
  let gamma = elected_sign(s);
  if (params.mode == MODE_SUM) {
    for (var r = 0u; r < params.rows; r++) {
      if (!agrees(stack[r * n + j], gamma)) {
        stack[r * n + j] = 0.0;
      }
    }
    return;
  }
  if (params.mode == MODE_MEAN) {
    var count = 0u;
    for (var r = 0u; r < params.rows; r++) {
      count += select(0u, 1u, agrees(stack[r * n + j], gamma));
    }
    for (var r = 0u; r < params.rows; r++) {
      let x = stack[r * n + j];
      if (!agrees(x, gamma)) {
        stack[r * n + j] = 0.0;
      } else if (count > 1u) {
        stack[r * n + j] = x * recip[count];
      }
    }
    return;
  }
  // MAX: the first agreeing row of strictly largest magnitude bits.
  var best = params.rows;
  var best_mag = 0u;
  for (var r = 0u; r < params.rows; r++) {
    let x = stack[r * n + j];
    let mag = bitcast<u32>(x) & 0x7fffffffu;
    if (agrees(x, gamma) && (best == params.rows || mag > best_mag)) {
      best = r;
      best_mag = mag;
    }
  }
  for (var r = 0u; r < params.rows; r++) {
    if (r != best) {
      stack[r * n + j] = 0.0;
    }
  }
}
