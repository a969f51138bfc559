// row_band_serial: row_band_mask's result (same bindings, params and semantics: in every row of length n keep the
// entries of descending magnitude rank in [from, to), ties by lower index, zero the rest in place) with one thread per
// row and no workgroup memory or barriers, for CPU-emulated adapters (src/engine/gpu/rowBand.ts picks it): there a
// workgroup barrier switches every invocation of the workgroup, and row_band_mask's 15 barriers per row cost far more
// than the arithmetic. The thread finds the keys a and b at ranks from and to - 1 with a radix select of 4 passes of
// 8 bits over its row, both ranks at once (two private 256-bin histograms of the elements whose higher bits match the
// prefix found so far), then walks the row once in index order: entries with a key strictly between b and a are kept;
// an entry equal to a (resp. b != a) is kept when greater(a) + its ordinal among them lies in [from, to).
//
// Bindings (group 0):
//   0  params  uniform { n, total_rows, band_from, band_to }   band_to <= n (clamped by the host); band_from >=
//              band_to zeroes every row
//   1  stack   storage, read_write  array<u32>       [total_rows, n] f32 bit patterns, row-major
// Dispatch: one thread per row, total_rows threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups (flat_index);
// surplus threads return. Any n >= 1 works (total_rows * n < 2^32).

// uses: _row_band_mask_span

struct Params {
  n: u32,
  total_rows: u32,
  band_from: u32,
  band_to: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> stack: array<u32>;

// Digit width: 8 bits (4 passes) for long rows, 4 bits (8 passes, 16 bins to clear and walk per pass) for short ones,
// where clearing and walking 256 bins per pass would cost more than reading the row.
override RADIX_BITS: u32 = 8u;
const MAX_BINS: u32 = 256u;
override RADIX_BINS: u32 = 1u << RADIX_BITS;
override RADIX_PASSES: u32 = 32u / RADIX_BITS;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = flat_index(wg, nwg, lid);
  if (row >= params.total_rows) {
    return;
  }
  let n = params.n;
  let base = row * n;
  if (params.band_from >= params.band_to) {
    for (var j = 0u; j < n; j++) {
      stack[base + j] = 0u;
    }
    return;
  }
  // x: rank from (key a), y: rank to - 1 (key b): the key prefix found so far, the rank left inside it, and the
  // elements of the row with a greater key.
  var prefix = vec2<u32>(0u, 0u);
  var rank = vec2<u32>(params.band_from, params.band_to - 1u);
  var greater = vec2<u32>(0u, 0u);
  var hist_a: array<u32, MAX_BINS>;
  var hist_b: array<u32, MAX_BINS>;
  for (var level = 0u; level < RADIX_PASSES; level++) {
    let shift = (RADIX_PASSES - 1u - level) * RADIX_BITS;
    // Bits above this digit (none at level 0: 2 << 31 wraps to 0, so the mask is 0).
    let high_mask = ~((2u << (shift + RADIX_BITS - 1u)) - 1u);
    for (var d = 0u; d < RADIX_BINS; d++) {
      hist_a[d] = 0u;
      hist_b[d] = 0u;
    }
    for (var j = 0u; j < n; j++) {
      let key = stack[base + j] & 0x7fffffffu;
      let digit = (key >> shift) & (RADIX_BINS - 1u);
      if ((key & high_mask) == prefix.x) {
        hist_a[digit] += 1u;
      }
      if ((key & high_mask) == prefix.y) {
        hist_b[digit] += 1u;
      }
    }
    // Walk down from digit 255 to the bin holding each rank.
    var above_a = 0u;
    var digit_a = RADIX_BINS - 1u;
    while (digit_a > 0u && rank.x >= above_a + hist_a[digit_a]) {
      above_a += hist_a[digit_a];
      digit_a--;
    }
    var above_b = 0u;
    var digit_b = RADIX_BINS - 1u;
    while (digit_b > 0u && rank.y >= above_b + hist_b[digit_b]) {
      above_b += hist_b[digit_b];
      digit_b--;
    }
    prefix |= vec2<u32>(digit_a, digit_b) << vec2<u32>(shift, shift);
    rank -= vec2<u32>(above_a, above_b);
    greater += vec2<u32>(above_a, above_b);
  }
  let a = prefix.x;
  let b = prefix.y;
  mask_span(base, base + n, a, b, greater);
}
