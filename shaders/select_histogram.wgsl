// select_histogram: one streaming pass of the exact magnitude radix select (src/engine/gpu/select.ts).
//
// Each element's key is bits(x) & 0x7fffffff (|x| ordered as a u32: -0 == 0, NaN above Infinity). Rows of the
// stack belong to segments; each segment has "slots" (a slot = one key prefix under study, with its own bins). An
// element goes to the first slot g of its row's segment with key >> prefix_shift == slots[g], and counts in bin
// g * bins + ((key >> shift) & digit_mask). Pass 1 uses one slot per segment with prefix_shift 31 (every key
// matches prefix 0) and the high 16 bits as digit; pass 2 uses the low 15 bits under each selected 16-bit prefix.
//
// Bindings (group 0):
//   0  params  uniform { elems, numel, shift, digit_mask, prefix_shift, bins, per_thread }
//              elems = listed rows * numel (the elements of this dispatch)
//   1  rows    storage, read        array<vec4<u32>>   per listed row: (stack row, first slot, slot count, unused)
//   2  slots   storage, read        array<u32>         the key prefix of each slot
//   3  stack   storage, read        array<u32>         [stack rows, numel] f32 bit patterns, row-major
//   4  hist    storage, read_write  array<atomic<u32>> [slots, bins] counts as (low word, high word) pairs: a 64-bit
//                                                      count, the high word bumped when the low word wraps
// Dispatch: ceil(elems / (WORKGROUP_SIZE * per_thread)) workgroups on a 2-D grid. Workgroup w handles elements
// w * WORKGROUP_SIZE * per_thread + i * WORKGROUP_SIZE + lid (i < per_thread): coalesced loads. Each thread merges
// runs of the same bin into one atomic add (long runs of zeros or equal values cost one atomic, not one each).
// Bounds: elements past elems are skipped; no barriers.

struct Params {
  elems: u32,
  numel: u32,
  shift: u32,
  digit_mask: u32,
  prefix_shift: u32,
  bins: u32,
  per_thread: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> slots: array<u32>;
@group(0) @binding(3) var<storage, read> stack: array<u32>;
@group(0) @binding(4) var<storage, read_write> hist: array<atomic<u32>>;

const NO_BIN: u32 = 0xffffffffu;

fn add_count(bin: u32, count: u32) {
  let old = atomicAdd(&hist[2u * bin], count);
  if (old > 0xffffffffu - count) {
    atomicAdd(&hist[2u * bin + 1u], 1u);
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let block = workgroup_index(wg, nwg) * WORKGROUP_SIZE * params.per_thread;
  var current = NO_BIN;
  var run = 0u;
  for (var i = 0u; i < params.per_thread; i++) {
    let e = block + i * WORKGROUP_SIZE + lid;
    if (e >= params.elems) {
      break;
    }
    let r = e / params.numel;
    let info = rows[r];
    let key = stack[info.x * params.numel + (e - r * params.numel)] & 0x7fffffffu;
    let prefix = key >> params.prefix_shift;
    for (var g = info.y; g < info.y + info.z; g++) {
      if (slots[g] == prefix) {
        let bin = g * params.bins + ((key >> params.shift) & params.digit_mask);
        if (bin != current) {
          if (run > 0u) {
            add_count(current, run);
          }
          current = bin;
          run = 0u;
        }
        run += 1u;
        break;
      }
    }
  }
  if (run > 0u) {
    add_count(current, run);
  }
}
