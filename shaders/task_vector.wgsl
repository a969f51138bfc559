// task_vector: one row of the task-vector stack.   out[row * numel + j] = decode(raw_ft, j) - base[j]
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, dtype: u32, row: u32 }
//   1  raw_ft  storage, read        array<u32>   the fine-tuned tensor's raw bytes as words (layout as in unpack.wgsl)
//   2  base    storage, read        array<f32>   the base tensor, already unpacked (numel elements)
//   3  out     storage, read_write  array<f32>   the stack [rows, numel]; only row `row` is written
// Dispatch: one thread per element, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing. One f32 subtraction per element (devices may flush subnormals).

struct Params {
  numel: u32,
  dtype: u32,
  row: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> raw_ft: array<u32>;
@group(0) @binding(2) var<storage, read> base: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
  let ft = decode_raw(raw_ft[raw_word_index(j, params.dtype)], j, params.dtype);
  out[params.row * params.numel + j] = ft - base[j];
}
