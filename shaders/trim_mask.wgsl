// trim_mask: TIES magnitude trim, in place on a stack of task vectors.
//   stack[r * numel + j] = 0 unless (bits(x) & 0x7fffffff) >= thresholds[r]
// Comparing magnitude bits instead of floats gives the ">=" rule of the TIES trim with no float compare: for
// non-negative floats the bit order is the numeric order, so no device rounding, subnormal flushing or NaN
// assumption can change which entries stay. thresholds[r] = 0 keeps the whole row; NaN has the largest
// magnitude bits and is kept whenever anything of its row with a finite threshold would be.
//
// Bindings (group 0):
//   0  params      uniform { numel: u32, rows: u32 }
//   1  thresholds  storage, read        array<u32>   one magnitude bit pattern per row
//   2  stack       storage, read_write  array<u32>   [rows, numel] f32 bit patterns, row-major
// Dispatch: one thread per column j, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index); each
// thread walks the rows of its column. Bounds: threads with j >= numel do nothing. Kept entries keep their
// exact bits; dropped ones become +0.

struct Params {
  numel: u32,
  rows: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> thresholds: array<u32>;
@group(0) @binding(2) var<storage, read_write> stack: array<u32>;

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
  for (var r = 0u; r < params.rows; r++) {
    let i = r * params.numel + j;
    if ((stack[i] & 0x7fffffffu) < thresholds[r]) {
      stack[i] = 0u;
    }
  }
}
