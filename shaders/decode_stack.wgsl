// decode_stack: theta0 and the whole task-vector stack of one chunk from the raw model bytes, in one launch.
//   base[j] = decode(theta0, j),   stack[(first_row + t) * numel + j] = decode(model t, j) - base[j]
// the same values as unpack + one task_vector per model (one f32 subtraction per element). Models stored in
// different dtypes take one launch each (first_row = the model's row).
//
// Pipeline constants (one pipeline per combination): BASE_DTYPE, MODEL_DTYPE (every model in MODEL_DTYPE), QUADS
// (numel % 4 == 0: every row starts on a whole vec4, so a thread stores its group as one quad; a CPU-emulated device
// spends about as much per store whatever its width).
// Bindings (group 0):
//   0  params  uniform { numel: u32, tasks: u32, model_first: u32, model_stride: u32, first_row: u32 }
//   1  inputs  storage, read        array<vec4<u32>>  raw bytes: theta0 from vec4 0, model t (0-based) from vec4
//                                                     model_first + t * model_stride, each segment padded to whole
//                                                     groups of 4 elements
//   2  base    storage, read_write  array<vec4<f32>>  numel elements, bound in whole quads (bindQuads)
//   3  stack   storage, read_write  array<vec4<f32>>  [first_row + tasks, numel] f32, bound in whole quads; rows below
//                                                     first_row untouched
// Dispatch: one thread per group of 4 elements (vec4 loads), WORKGROUP_SIZE per workgroup, 2-D grid (flat_index).
// Bounds: threads past the last group return; the last group writes only elements below numel (the padding words of
// the last quad keep their value).

override BASE_DTYPE: u32 = DTYPE_F32;
override MODEL_DTYPE: u32 = DTYPE_F32;
override QUADS: bool = true;

struct Params {
  numel: u32,
  tasks: u32,
  model_first: u32,
  model_stride: u32,
  first_row: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inputs: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> base: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> stack: array<vec4<f32>>;

// Elements 4g .. 4g+3 of the segment starting at vec4 `first`.
fn load4(first: u32, g: u32, dtype: u32) -> vec4<f32> {
  return decode_raw4(inputs[first + raw_vec4_index(g, dtype)], g, dtype);
}

// Writes x to flat stack elements at .. at+3 that lie below `end`, one by one (rows not on whole quads).
fn store_elements(at: u32, end: u32, x: vec4<f32>) {
  for (var i = 0u; i < 4u; i++) {
    if (at + i < end) {
      stack[(at + i) / 4u][(at + i) % 4u] = x[i];
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
  let theta = load4(0u, g, BASE_DTYPE);
  // base is one row from element 0: group g is quad g; a partial last group keeps the padding words.
  let live = lanes_below(4u * g, numel);
  base[g] = select(base[g], theta, live);
  for (var t = 0u; t < params.tasks; t++) {
    let tau = load4(params.model_first + t * params.model_stride, g, MODEL_DTYPE) - theta;
    let row = params.first_row + t;
    if (QUADS) {
      stack[row * (numel / 4u) + g] = tau;
    } else {
      store_elements(row * numel + 4u * g, row * numel + numel, tau);
    }
  }
}
