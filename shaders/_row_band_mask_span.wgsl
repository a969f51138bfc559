// _row_band_mask_span.wgsl: a part, not a kernel (the loader puts it in front of kernels with the line
// `// uses: _row_band_mask_span`): the last step of row_band_mask and row_band_serial, which both declare
// `stack: array<u32>` and `params` with band_from and band_to.

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
