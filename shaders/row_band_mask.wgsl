// row_band_mask: in every row of length n, keep the entries of descending magnitude rank in [from, to) and zero the
// rest in place (src/engine/gpu/rowBand.ts; Breadcrumbs' row-wise masking). Keys are bits(x) & 0x7fffffff; among
// equal keys the lower index in the row ranks first.
//
// One workgroup of ROW_THREADS threads per row. It finds the keys a and b at ranks from and to - 1 with a radix
// select of 4 passes of 8 bits over the row (in global memory), both ranks at once: per pass a workgroup-private
// 256-bin histogram for each rank (only elements whose higher bits match the prefix found so far); 32 threads sum
// 16-bin groups, then one thread walks, for each rank, the groups and bins from the top to the bin holding it. A
// final pass gives each entry equal to a (resp. b != a) its ordinal in index order from a prefix sum of the threads'
// counts; it is kept when greater(a) + ordinal lies in [from, to); entries strictly between b and a are kept; the
// rest become +0. Barriers: 3 per radix pass and 3 more (barriers are costly on CPU WebGPU; the serial walks take
// at most 2 x 32 steps).
//
// Bindings (group 0):
//   0  params  uniform { n, total_rows, band_from, band_to }   band_to <= n (clamped by the host); band_from >=
//              band_to zeroes every row
//   1  stack   storage, read_write  array<u32>       [total_rows, n] f32 bit patterns, row-major
// Dispatch: total_rows workgroups on a 2-D grid (workgroup_index). Reads in the select passes are strided by
// ROW_THREADS (coalesced); in the final pass thread lid owns the ceil(n / ROW_THREADS) consecutive entries from
// lid * ceil(n / ROW_THREADS). Any n >= 1 works (total_rows * n < 2^32).
// Bounds: surplus workgroups act on an empty row and still reach every barrier (no early return after the first).

struct Params {
  n: u32,
  total_rows: u32,
  band_from: u32,
  band_to: u32,
}

// The select state of both ranks (x: rank from, y: rank to - 1): key prefix found so far, rank left inside it,
// and elements of the row with a greater key.
struct Selection {
  prefix: vec2<u32>,
  rank: vec2<u32>,
  greater: vec2<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> stack: array<u32>;

const ROW_THREADS: u32 = 64u;
const RADIX_BITS: u32 = 8u;
const RADIX_BINS: u32 = 256u;
const RADIX_PASSES: u32 = 4u;
const GROUP_BINS: u32 = 16u;
const GROUPS: u32 = RADIX_BINS / GROUP_BINS;
// One histogram per rank (a, b); two such pairs, alternating between passes, so the next pass's pair is cleared
// while this pass counts.
const HIST_PAIR: u32 = 2u * RADIX_BINS;
const_assert 2u * GROUPS <= ROW_THREADS;

var<workgroup> hist: array<atomic<u32>, 2u * HIST_PAIR>;
var<workgroup> partials: array<u32, 2u * GROUPS>;
var<workgroup> sel: Selection;
var<workgroup> ties: array<vec2<u32>, ROW_THREADS>;

// Zeroes the entries [first, end) of the stack that fall outside the rank band, given the band's boundary keys a (at
// rank band_from) and b (at rank band_to - 1): keys strictly between b and a stay; an entry equal to a (resp. b != a)
// stays when its rank, at.x (resp. at.y) for the first such entry of the span and one more for each next, lies in
// [band_from, band_to).
fn mask_span(first: u32, end: u32, a: u32, b: u32, start: vec2<u32>) {
  var at = start;
  for (var j = first; j < end; j++) {
    let key = stack[j] & 0x7fffffffu;
    var keep = key < a && key > b;
    if (key == a) {
      keep = at.x >= params.band_from && at.x < params.band_to;
      at.x += 1u;
    } else if (key == b) {
      keep = at.y >= params.band_from && at.y < params.band_to;
      at.y += 1u;
    }
    if (!keep) {
      stack[j] = 0u;
    }
  }
}

// Clears histogram pair `pair` (every thread clears its share).
fn clear_pair(lid: u32, pair: u32) {
  for (var i = lid; i < HIST_PAIR; i += ROW_THREADS) {
    atomicStore(&hist[pair * HIST_PAIR + i], 0u);
  }
}

// Finds the digit of rank `rank` (boundary `which`: 0 = a, 1 = b) from the group sums and bins of histogram `bins`
// (the first bin of that boundary's histogram), walking down from digit 255. Returns (digit, elements above it).
fn find_digit(rank: u32, which: u32, bins: u32) -> vec2<u32> {
  var above = 0u;
  var g = 0u;
  while (g + 1u < GROUPS && rank >= above + partials[which * GROUPS + g]) {
    above += partials[which * GROUPS + g];
    g++;
  }
  var digit = RADIX_BINS - 1u - g * GROUP_BINS;
  loop {
    let count = atomicLoad(&hist[bins + digit]);
    if (rank < above + count || digit == 0u) {
      break;
    }
    above += count;
    digit--;
  }
  return vec2<u32>(digit, above);
}

@compute @workgroup_size(ROW_THREADS)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = workgroup_index(wg, nwg);
  let n = select(0u, params.n, row < params.total_rows);
  let base = row * params.n;
  if (params.band_from >= params.band_to) {
    for (var j = lid; j < n; j += ROW_THREADS) {
      stack[base + j] = 0u;
    }
    return;
  }

  clear_pair(lid, 0u);
  if (lid == 0u) {
    sel = Selection(vec2<u32>(0u, 0u), vec2<u32>(params.band_from, params.band_to - 1u), vec2<u32>(0u, 0u));
  }
  workgroupBarrier();
  for (var level = 0u; level < RADIX_PASSES; level++) {
    let shift = (RADIX_PASSES - 1u - level) * RADIX_BITS;
    // Bits above this digit (none at level 0: 2 << 31 wraps to 0, so the mask is 0).
    let high_mask = ~((2u << (shift + RADIX_BITS - 1u)) - 1u);
    let pair = (level & 1u) * HIST_PAIR;
    clear_pair(lid, 1u - (level & 1u));
    let prefix = sel.prefix;
    for (var j = lid; j < n; j += ROW_THREADS) {
      let key = stack[base + j] & 0x7fffffffu;
      let digit = (key >> shift) & (RADIX_BINS - 1u);
      if ((key & high_mask) == prefix.x) {
        atomicAdd(&hist[pair + digit], 1u);
      }
      if ((key & high_mask) == prefix.y) {
        atomicAdd(&hist[pair + RADIX_BINS + digit], 1u);
      }
    }
    workgroupBarrier();
    // Threads 0..31: the sum of 16-bin group lid % 16 (groups numbered from the top digit down) of rank lid / 16.
    if (lid < 2u * GROUPS) {
      let top = pair + (lid / GROUPS) * RADIX_BINS + RADIX_BINS - 1u - (lid % GROUPS) * GROUP_BINS;
      var sum = 0u;
      for (var i = 0u; i < GROUP_BINS; i++) {
        sum += atomicLoad(&hist[top - i]);
      }
      partials[lid] = sum;
    }
    workgroupBarrier();
    // One thread updates the whole state (a store to one vector component may touch the others).
    if (lid == 0u) {
      let found_a = find_digit(sel.rank.x, 0u, pair);
      let found_b = find_digit(sel.rank.y, 1u, pair + RADIX_BINS);
      let digits = vec2<u32>(found_a.x, found_b.x) << vec2<u32>(shift, shift);
      let above = vec2<u32>(found_a.y, found_b.y);
      sel = Selection(sel.prefix | digits, sel.rank - above, sel.greater + above);
    }
    workgroupBarrier();
  }

  let a = sel.prefix.x;
  let b = sel.prefix.y;
  let per = (n + ROW_THREADS - 1u) / ROW_THREADS;
  let first = min(lid * per, n);
  let end = min(first + per, n);
  var mine = vec2<u32>(0u, 0u);
  for (var j = first; j < end; j++) {
    let key = stack[base + j] & 0x7fffffffu;
    mine += vec2<u32>(select(0u, 1u, key == a), select(0u, 1u, key == b && b != a));
  }
  ties[lid] = mine;
  workgroupBarrier();
  // Exclusive prefix of the threads' tie counts, by one thread (ROW_THREADS steps, no further barriers).
  if (lid == 0u) {
    var sum = sel.greater;
    for (var t = 0u; t < ROW_THREADS; t++) {
      let count = ties[t];
      ties[t] = sum;
      sum += count;
    }
  }
  workgroupBarrier();
  // ties[lid]: the rank of this thread's first entry equal to a (x) or to b (y).
  mask_span(base + first, base + end, a, b, ties[lid]);
}
