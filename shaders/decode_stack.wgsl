// decode_stack: theta0 and the whole task-vector stack of one chunk from the raw model bytes, in one launch.
//   base[j] = decode(theta0, j),   stack[(first_row + t) * numel + j] = decode(model t, j) - base[j]
// the same values as unpack + one task_vector per model (one f32 subtraction per element). Models stored in
// different dtypes take one launch each (first_row = the model's row).
//
// Pipeline constants (one pipeline per combination): BASE_DTYPE, MODEL_DTYPE (every model in MODEL_DTYPE).
// Bindings (group 0):
//   0  params  uniform { numel: u32, tasks: u32, model_first: u32, model_stride: u32, first_row: u32 }
//   1  inputs  storage, read        array<vec4<u32>>  raw bytes: theta0 from vec4 0, model t (0-based) from vec4
//                                                     model_first + t * model_stride, each segment padded to whole
//                                                     groups of 4 elements
//   2  base    storage, read_write  array<f32>        numel elements
//   3  stack   storage, read_write  array<f32>        [first_row + tasks, numel]; rows below first_row untouched
// Dispatch: one thread per group of 4 elements (vec4 loads), WORKGROUP_SIZE per workgroup, 2-D grid (flat_index).
// Bounds: threads past the last group return; the last group writes only elements below numel.

override BASE_DTYPE: u32 = DTYPE_F32;
override MODEL_DTYPE: u32 = DTYPE_F32;

struct Params {
  numel: u32,
  tasks: u32,
  model_first: u32,
  model_stride: u32,
  first_row: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inputs: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> base: array<f32>;
@group(0) @binding(3) var<storage, read_write> stack: array<f32>;

// Elements 4g .. 4g+3 of the segment starting at vec4 `first`.
fn load4(first: u32, g: u32, dtype: u32) -> vec4<f32> {
  return decode_raw4(inputs[first + raw_vec4_index(g, dtype)], g, dtype);
}

// Writes x to elements at .. at+3 of `row`'s range that lie below the row's end.
fn store4(at: u32, end: u32, x: vec4<f32>, to_base: bool) {
  for (var i = 0u; i < 4u; i++) {
    if (at + i < end) {
      if (to_base) {
        base[at + i] = x[i];
      } else {
        stack[at + i] = x[i];
      }
    }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = flat_index(wg, nwg, lid);
  let numel = params.numel;
  if (4u * g >= numel) {
    return;
  }
  let whole = 4u * g + 4u <= numel;
  let theta = load4(0u, g, BASE_DTYPE);
  if (whole) {
    base[4u * g] = theta.x;
    base[4u * g + 1u] = theta.y;
    base[4u * g + 2u] = theta.z;
    base[4u * g + 3u] = theta.w;
  } else {
    store4(4u * g, numel, theta, true);
  }
  for (var t = 0u; t < params.tasks; t++) {
    let tau = load4(params.model_first + t * params.model_stride, g, MODEL_DTYPE) - theta;
    let row = params.first_row + t;
    let at = row * numel + 4u * g;
    if (whole) {
      stack[at] = tau.x;
      stack[at + 1u] = tau.y;
      stack[at + 2u] = tau.z;
      stack[at + 3u] = tau.w;
    } else {
      store4(at, row * numel + numel, tau, false);
    }
  }
}
