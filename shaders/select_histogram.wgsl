// select_histogram: one streaming pass of the exact magnitude radix select (src/engine/gpu/select.ts).
//
// Each element's key is bits(x) & 0x7fffffff (|x| ordered as a u32: -0 == 0, NaN above Infinity). Rows of the
// stack belong to segments; each segment has "slots" (a slot = one key prefix under study, with its own bins). An
// element goes to the slot g of its row's segment whose prefix is key >> prefix_shift, if there is one, and counts in
// bin g * bins + ((key >> shift) & digit_mask). Pass 1 uses one slot per segment with prefix_shift 31 (every key
// matches prefix 0) and the high 16 bits as digit; pass 2 uses the low 15 bits under each selected 16-bit prefix.
//
// Pipeline constant LOOKUP (how an element finds its slot; the host picks one per pass):
//   true   the segment's prefix table: a slot index (or NO_SLOT) for each prefix from the segment's lowest selected
//          prefix to its highest, one gathered load per element. Used whenever the pass's tables fit (host:
//          LOOKUP_MAX_ENTRIES): as fast as one compare with one slot, and the top-k curve's pass 2 with 8 slots per
//          segment ran 2.8x faster than with the slots tried in turn on SwiftShader
//   false  the segment's slots are tried in turn (one compare per slot and quad)
// Bindings (group 0):
//   0  params  uniform { numel, quads, shift, digit_mask, prefix_shift, bins, per_thread }
//              quads = row stride in vec4 words (>= numel / 4); words of a row past numel are ignored
//   1  rows    storage, read        array<vec4<u32>>   per listed row: (stack row, first slot, slot count, unused), or
//                                                      with LOOKUP (stack row, table start, first prefix, table length)
//   2  slots   storage, read        array<u32>         the key prefix of each slot, or with LOOKUP the tables
//   3  stack   storage, read        array<vec4<u32>>   [stack rows, quads] vec4s of f32 bit patterns, row-major
//   4  hist    storage, read_write  array<atomic<u32>> [slots, bins] counts as (low word, high word) pairs: a 64-bit
//                                                      count, the high word bumped when the low word wraps
// Dispatch: x = ceil(quads / (WORKGROUP_SIZE * per_thread)) workgroups per listed row, y = listed row. Thread lid
// of workgroup x takes the vec4s x * WORKGROUP_SIZE * per_thread + i * WORKGROUP_SIZE + lid (i < per_thread) of
// its row: whole vec4 loads, vec4 key arithmetic and no per-element index arithmetic or data-dependent loops,
// which CPU-emulated devices run several times faster than one element per step. A vec4 of four equal bins (runs
// of zeros, e.g. after DARE) costs one atomic add, not four. Bounds: vec4s past quads and elements past numel are
// skipped; no barriers.

override LOOKUP: bool = false;
const NO_SLOT: u32 = 0xffffffffu;

struct Params {
  numel: u32,
  quads: u32,
  shift: u32,
  digit_mask: u32,
  prefix_shift: u32,
  bins: u32,
  per_thread: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> slots: array<u32>;
@group(0) @binding(3) var<storage, read> stack: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> hist: array<atomic<u32>>;

fn add_count(bin: u32, count: u32) {
  let old = atomicAdd(&hist[2u * bin], count);
  if (old > 0xffffffffu - count) {
    atomicAdd(&hist[2u * bin + 1u], 1u);
  }
}

// Counts the hit lanes of a quad in their bins.
fn count_quad(hit: vec4<bool>, bin: vec4<u32>) {
  if (all(hit) && all(bin == vec4<u32>(bin.x))) {
    add_count(bin.x, 4u);
  } else {
    if (hit.x) {
      add_count(bin.x, 1u);
    }
    if (hit.y) {
      add_count(bin.y, 1u);
    }
    if (hit.z) {
      add_count(bin.z, 1u);
    }
    if (hit.w) {
      add_count(bin.w, 1u);
    }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let info = rows[wg.y];
  let row = info.x * params.quads;
  let block = wg.x * WORKGROUP_SIZE * params.per_thread;
  for (var i = 0u; i < params.per_thread; i++) {
    let q = block + i * WORKGROUP_SIZE + lid;
    if (q >= params.quads) {
      break;
    }
    let keys = stack[row + q] & vec4<u32>(0x7fffffffu);
    let inside = lanes_below(4u * q, params.numel);
    let prefix = keys >> vec4<u32>(params.prefix_shift);
    let digit = (keys >> vec4<u32>(params.shift)) & vec4<u32>(params.digit_mask);
    if (LOOKUP) {
      let rel = prefix - vec4<u32>(info.z);
      let at = vec4<u32>(info.y) + min(rel, vec4<u32>(info.w - 1u));
      let slot = vec4<u32>(slots[at.x], slots[at.y], slots[at.z], slots[at.w]);
      let hit = inside & (rel < vec4<u32>(info.w)) & (slot != vec4<u32>(NO_SLOT));
      if (any(hit)) {
        count_quad(hit, slot * vec4<u32>(params.bins) + digit);
      }
    } else {
      // The slots of a segment hold distinct prefixes, so each key matches at most one of them.
      for (var g = info.y; g < info.y + info.z; g++) {
        let hit = inside & (prefix == vec4<u32>(slots[g]));
        if (any(hit)) {
          count_quad(hit, vec4<u32>(g * params.bins) + digit);
        }
      }
    }
  }
}
