// usage_histogram: histogram of TALL usage counts (src/engine/reference/metrics.ts usageHistogram):
//   hist[c] = number of weights j with counts[j] == c, c = 0..bins-1 (bins = tasks + 1);
//   hist[bins] = number of counts >= bins (out of range: the host reports them as an error).
// Integer counts add up exactly in any order, so workgroups count into a workgroup-memory histogram with
// atomics and then add their non-zero bins to the result with storage atomics: one global atomic per bin and
// workgroup instead of one per weight, and only two barriers (the zero-initialisation of workgroup memory and
// the one before the flush).
//
// Bindings (group 0):
//   0  params  uniform { numel: u32, bins: u32, chunk: u32, chunks: u32 }   bins + 1 <= HISTOGRAM_MAX_BINS
//   1  counts  storage, read        array<u32>           [numel]
//   2  hist    storage, read_write  array<atomic<u32>>   [bins + 1], zero before the dispatch
// Dispatch: one workgroup per chunk of `chunk` counts (a multiple of WORKGROUP_SIZE), chunks on a 2-D grid.
// Bounds: indices past numel count nothing; surplus workgroups add nothing. Every thread reaches the barrier.

struct Params {
  numel: u32,
  bins: u32,
  chunk: u32,
  chunks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> hist: array<atomic<u32>>;

var<workgroup> local_hist: array<atomic<u32>, HISTOGRAM_MAX_BINS>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = workgroup_index(wg, nwg);
  if (w < params.chunks) {
    let start = w * params.chunk;
    for (var k = lid; k < params.chunk; k += WORKGROUP_SIZE) {
      let i = start + k;
      if (i < params.numel) {
        atomicAdd(&local_hist[min(counts[i], params.bins)], 1u);
      }
    }
  }
  workgroupBarrier();
  for (var b = lid; b <= params.bins; b += WORKGROUP_SIZE) {
    let v = atomicLoad(&local_hist[b]);
    if (v != 0u) {
      atomicAdd(&hist[b], v);
    }
  }
}
