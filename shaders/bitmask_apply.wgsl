// bitmask_apply: one task's TALL model delta from the multi-task vector and the masks packed by tall_mask:
//   out[j] = bit `bit` of bitfield[j] is set ? src[j] : +0
// Bit-level: kept entries keep their exact bits.
//
// Bindings (group 0):
//   0  params    uniform { numel: u32, bit: u32 }   bit < 32
//   1  bitfield  storage, read        array<u32>   [numel]
//   2  src       storage, read        array<u32>   [numel] f32 bit patterns
//   3  out       storage, read_write  array<u32>   [numel] f32 bit patterns (a different buffer from src)
// Dispatch: one thread per element, WORKGROUP_SIZE threads per workgroup, on a 2-D grid (flat_index).
// Bounds: threads with j >= numel do nothing.

struct Params {
  numel: u32,
  bit: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bitfield: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

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
  out[j] = select(0u, src[j], ((bitfield[j] >> params.bit) & 1u) == 1u);
}
