// _fused_out.wgsl: a part, not a kernel (see _raw_block.wgsl for how parts are loaded). For the fused output kernels
// (linear_merge, magmax_output, consensus_output, tall_output, ties_output), which declare `out: array<vec4<u32>>`
// (the encoded output, padded to whole blocks) and the pipeline constant OUT_DTYPE: `store_block` writes one block of
// sixteen merged values, F32 words with canonical NaNs, or F16 / BF16 pairs per word; `store_block_at` the same into
// the output that starts at vec4 `first` (tall_output writes one output per task into one buffer).

fn store_block_at(first: u32, k: u32, merged: F4) {
  if (OUT_DTYPE == DTYPE_F32) {
    out[first + 4u * k] = canonical4(merged.a);
    out[first + 4u * k + 1u] = canonical4(merged.b);
    out[first + 4u * k + 2u] = canonical4(merged.c);
    out[first + 4u * k + 3u] = canonical4(merged.d);
  } else {
    out[first + 2u * k] = encode16x8(merged.a, merged.b, OUT_DTYPE);
    out[first + 2u * k + 1u] = encode16x8(merged.c, merged.d, OUT_DTYPE);
  }
}

fn store_block(k: u32, merged: F4) {
  store_block_at(0u, k, merged);
}
