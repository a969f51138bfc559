// gram: per-block partial dot products between the rows of a [rows, numel] f32 buffer, for every pair a <= b (the
// upper triangle of the Gram matrix, diagonal included; cosines, Model Stock and SLERP use it).
// Pair p is numbered row-major over the upper triangle: (0,0), (0,1), ..., (0,rows-1), (1,1), ...
// One thread per (pair, block of REDUCTION_BLOCK consecutive elements) adds its block's products (kept unfused) in
// four running sums, element i into sum i % 4 in element order, and writes (s0 + s1) + (s2 + s3); the host adds a
// pair's partials in float64. With ALIGNED (numel % 4 == 0, so every row and block starts on a whole quad) a thread
// reads a quad of each row per step: on a CPU-emulated device each storage access costs about as much whatever its
// width, and one f32 per access ran about 3x slower. No workgroup barriers (see row_stats).
//
// Pipeline constants: ALIGNED   numel % 4 == 0 (else every element is read on its own, in the same sums)
// Bindings (group 0):
//   0  params    uniform { numel: u32, rows: u32, blocks: u32, pairs: u32, zero: u32 }
//                blocks = ceil(numel / REDUCTION_BLOCK), pairs = rows * (rows + 1) / 2, zero = 0 (see `unfused`)
//   1  data      storage, read        array<vec4<f32>>   [rows, numel] f32, row-major (rows * numel rounded up to
//                                                        whole quads; the padding is never read)
//   2  partials  storage, read_write  array<f32>         [pairs, blocks]
// Dispatch: one thread per (pair, block), pairs * blocks threads on a 2-D grid of WORKGROUP_SIZE-thread workgroups
// (flat_index); surplus threads return.

override ALIGNED: bool = true;

struct Params {
  numel: u32,
  rows: u32,
  blocks: u32,
  pairs: u32,
  zero: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let k = flat_index(wg, nwg, lid);
  if (k >= params.pairs * params.blocks) {
    return;
  }
  // Row a holds pairs (a, a..rows-1): step over whole rows of the triangle.
  var p = k / params.blocks;
  var a = 0u;
  while (p >= params.rows - a) {
    p -= params.rows - a;
    a++;
  }
  let b = a + p;
  let span = block_span(k % params.blocks, params.numel);
  let zero = params.zero;
  let ra = a * params.numel;
  let rb = b * params.numel;
  var acc = vec4<f32>(0.0);
  if (ALIGNED) {
    let qa = (ra + span.x) / 4u;
    let qb = (rb + span.x) / 4u;
    for (var q = 0u; q < (span.y - span.x) / 4u; q++) {
      acc += unfused4(data[qa + q] * data[qb + q], zero);
    }
  } else {
    for (var i = span.x; i < span.y; i++) {
      acc[i & 3u] += unfused(element(ra + i) * element(rb + i), zero);
    }
  }
  partials[k] = (acc.x + acc.y) + (acc.z + acc.w);
}

// Element i of the flat [rows, numel] data.
fn element(i: u32) -> f32 {
  return data[i / 4u][i % 4u];
}
