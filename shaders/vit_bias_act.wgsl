// vit_bias_act: adds a bias to every row of a matmul's output in place, then applies an activation:
//   y[i] = act(y[i] + bias[i % cols])
// act: 0 = identity, 1 = quick_gelu x * sigmoid(1.702 x), 2 = exact gelu 0.5 x (1 + erf(x / sqrt(2))).
// WGSL has no erf: erf_approx is Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7, the size of f32 rounding).
//
// Pipeline constants: ACT   the activation (one pipeline each: a CPU-emulated device runs the code of both sides of a
//                           branch, masked, so an activation read from a uniform cost every bias add an exp and erf)
// Bindings (group 0):
//   0  params  uniform { total: u32, cols: u32 }   total = rows * cols
//   1  bias    storage, read        array<f32>   [cols]
//   2  y       storage, read_write  array<f32>   [rows, cols], row-major
// Dispatch: one thread per element, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with index >= total do nothing.

override ACT: u32 = 0u;

struct Params {
  total: u32,
  cols: u32,
}

const ACT_QUICK_GELU: u32 = 1u;
const ACT_GELU: u32 = 2u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn erf_approx(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-a * a));
}

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
  let x = y[idx] + bias[idx % params.cols];
  var out = x;
  if (ACT == ACT_QUICK_GELU) {
    out = x / (1.0 + exp(-1.702 * x));
  } else if (ACT == ACT_GELU) {
    out = 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
  }
  y[idx] = out;
}
