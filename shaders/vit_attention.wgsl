// vit_attention: multi-head self-attention of the projected queries, keys and values, for every image, head and
// query token:   out[b, t, h] = sum_j softmax_j(q[b, t, h] . k[b, j, h] * scale) v[b, j, h]
// where [b, t, h] is the head_dim-wide slice h * head_dim .. (h + 1) * head_dim - 1 of token row b * T + t, j runs
// over the T tokens of image b (only j <= t when `causal` is 1, the text tower's causal mask), and
// scale = 1 / sqrt(head_dim).
//
// Bindings (group 0):
//   0  params  uniform { batch: u32, tokens: u32, heads: u32, head_dim: u32, scale: f32, causal: u32 }
//   1  q       storage, read        array<f32>   [B * T, D], D = heads * head_dim
//   2  k       storage, read        array<f32>   [B * T, D]
//   3  v       storage, read        array<f32>   [B * T, D]
//   4  out     storage, read_write  array<f32>   [B * T, D], heads concatenated (the layout out_proj expects)
//   5  q4, 6  k4, 7  v4   storage, read  array<vec4<f32>>   q, k and v as vec4s (read only when VEC4)
// Dispatch: one thread per (image, head, query token), index (b * heads + h) * T + t, WORKGROUP_SIZE threads per
// workgroup, on a 2-D grid (flat_index). Each thread makes one pass over the keys with an online softmax (running
// maximum m and denominator l; each key rescales l and the output by exp(m_old - m_new), without a branch: CPU
// implementations run both sides of a divergent branch).
// Registers, not arrays: the head slice is up to VIT_MAX_HEAD_DIM / 4 = 32 quads of four held in named vec4s (the
// scaled query r0.., the output a0..), each line guarded by the pipeline constant QUADS = ceil(head_dim / 4), so the
// compiler drops the unused quads. A private array indexed in a loop is memory on SwiftShader, where this layout ran
// the demo's attention (32 x 17 tokens, 4 heads of 32) 2.8x and ViT-B/32's (8 x 50, 12 heads of 64) 2.2x faster.
// VEC4 (head_dim a multiple of 4, as in every CLIP model) reads q, k and v as vec4s; without it each quad is
// assembled from scalar loads, the last one zero-padded. Barrier-free: neighbouring threads read the same keys and
// values, which the caches share. Sequences are short in vision transformers (50 tokens for ViT-B/32), so a thread
// per query gives enough parallelism.
// Bounds: threads past batch * heads * tokens do nothing; the host checks head_dim <= VIT_MAX_HEAD_DIM and
// QUADS = ceil(head_dim / 4).

struct Params {
  batch: u32,
  tokens: u32,
  heads: u32,
  head_dim: u32,
  scale: f32,
  causal: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> k4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> v4: array<vec4<f32>>;

override VEC4: bool = false;
override QUADS: u32 = 1u;

// Elements 4e .. 4e + 3 of the head slice starting at element `at` of q, k or v: one vec4 load with VEC4, else four
// scalar loads, zero past head_dim.
// `which` is a constant at every call (0 q, 1 k, 2 v), so the compiler keeps one load.
fn quad(which: u32, at: u32, e: u32) -> vec4<f32> {
  if (VEC4) {
    let i = at / 4u + e;
    if (which == 0u) {
      return q4[i];
    }
    if (which == 1u) {
      return k4[i];
    }
    return v4[i];
  }
  var x = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    let d = 4u * e + c;
    if (d < params.head_dim) {
      let i = at + d;
      if (which == 0u) {
        x[c] = q[i];
      } else if (which == 1u) {
        x[c] = k[i];
      } else {
        x[c] = v[i];
      }
    }
  }
  return x;
}

// Writes output quad `e` (elements 4e.. of the head slice at `at`), skipping elements past head_dim.
fn store(at: u32, e: u32, o: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) {
    if (4u * e + c < params.head_dim) {
      out[at + 4u * e + c] = o[c];
    }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = flat_index(wg, nwg, lid);
  let tokens = params.tokens;
  if (idx >= params.batch * params.heads * tokens) {
    return;
  }
  let hd = params.head_dim;
  let dim = params.heads * hd;
  let t = idx % tokens;
  let h = (idx / tokens) % params.heads;
  let b = idx / (tokens * params.heads);
  let row0 = b * tokens;
  let col = h * hd;
  let q_at = (row0 + t) * dim + col;
  let sc = params.scale;

  // The scaled query and the output, quad by quad (see the header).
  var r0 = vec4<f32>(0.0);
  var a0 = vec4<f32>(0.0);
  if (QUADS > 0u) { r0 = quad(0u, q_at, 0u) * sc; }
  var r1 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  if (QUADS > 1u) { r1 = quad(0u, q_at, 1u) * sc; }
  var r2 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  if (QUADS > 2u) { r2 = quad(0u, q_at, 2u) * sc; }
  var r3 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  if (QUADS > 3u) { r3 = quad(0u, q_at, 3u) * sc; }
  var r4 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0);
  if (QUADS > 4u) { r4 = quad(0u, q_at, 4u) * sc; }
  var r5 = vec4<f32>(0.0);
  var a5 = vec4<f32>(0.0);
  if (QUADS > 5u) { r5 = quad(0u, q_at, 5u) * sc; }
  var r6 = vec4<f32>(0.0);
  var a6 = vec4<f32>(0.0);
  if (QUADS > 6u) { r6 = quad(0u, q_at, 6u) * sc; }
  var r7 = vec4<f32>(0.0);
  var a7 = vec4<f32>(0.0);
  if (QUADS > 7u) { r7 = quad(0u, q_at, 7u) * sc; }
  var r8 = vec4<f32>(0.0);
  var a8 = vec4<f32>(0.0);
  if (QUADS > 8u) { r8 = quad(0u, q_at, 8u) * sc; }
  var r9 = vec4<f32>(0.0);
  var a9 = vec4<f32>(0.0);
  if (QUADS > 9u) { r9 = quad(0u, q_at, 9u) * sc; }
  var r10 = vec4<f32>(0.0);
  var a10 = vec4<f32>(0.0);
  if (QUADS > 10u) { r10 = quad(0u, q_at, 10u) * sc; }
  var r11 = vec4<f32>(0.0);
  var a11 = vec4<f32>(0.0);
  if (QUADS > 11u) { r11 = quad(0u, q_at, 11u) * sc; }
  var r12 = vec4<f32>(0.0);
  var a12 = vec4<f32>(0.0);
  if (QUADS > 12u) { r12 = quad(0u, q_at, 12u) * sc; }
  var r13 = vec4<f32>(0.0);
  var a13 = vec4<f32>(0.0);
  if (QUADS > 13u) { r13 = quad(0u, q_at, 13u) * sc; }
  var r14 = vec4<f32>(0.0);
  var a14 = vec4<f32>(0.0);
  if (QUADS > 14u) { r14 = quad(0u, q_at, 14u) * sc; }
  var r15 = vec4<f32>(0.0);
  var a15 = vec4<f32>(0.0);
  if (QUADS > 15u) { r15 = quad(0u, q_at, 15u) * sc; }
  var r16 = vec4<f32>(0.0);
  var a16 = vec4<f32>(0.0);
  if (QUADS > 16u) { r16 = quad(0u, q_at, 16u) * sc; }
  var r17 = vec4<f32>(0.0);
  var a17 = vec4<f32>(0.0);
  if (QUADS > 17u) { r17 = quad(0u, q_at, 17u) * sc; }
  var r18 = vec4<f32>(0.0);
  var a18 = vec4<f32>(0.0);
  if (QUADS > 18u) { r18 = quad(0u, q_at, 18u) * sc; }
  var r19 = vec4<f32>(0.0);
  var a19 = vec4<f32>(0.0);
  if (QUADS > 19u) { r19 = quad(0u, q_at, 19u) * sc; }
  var r20 = vec4<f32>(0.0);
  var a20 = vec4<f32>(0.0);
  if (QUADS > 20u) { r20 = quad(0u, q_at, 20u) * sc; }
  var r21 = vec4<f32>(0.0);
  var a21 = vec4<f32>(0.0);
  if (QUADS > 21u) { r21 = quad(0u, q_at, 21u) * sc; }
  var r22 = vec4<f32>(0.0);
  var a22 = vec4<f32>(0.0);
  if (QUADS > 22u) { r22 = quad(0u, q_at, 22u) * sc; }
  var r23 = vec4<f32>(0.0);
  var a23 = vec4<f32>(0.0);
  if (QUADS > 23u) { r23 = quad(0u, q_at, 23u) * sc; }
  var r24 = vec4<f32>(0.0);
  var a24 = vec4<f32>(0.0);
  if (QUADS > 24u) { r24 = quad(0u, q_at, 24u) * sc; }
  var r25 = vec4<f32>(0.0);
  var a25 = vec4<f32>(0.0);
  if (QUADS > 25u) { r25 = quad(0u, q_at, 25u) * sc; }
  var r26 = vec4<f32>(0.0);
  var a26 = vec4<f32>(0.0);
  if (QUADS > 26u) { r26 = quad(0u, q_at, 26u) * sc; }
  var r27 = vec4<f32>(0.0);
  var a27 = vec4<f32>(0.0);
  if (QUADS > 27u) { r27 = quad(0u, q_at, 27u) * sc; }
  var r28 = vec4<f32>(0.0);
  var a28 = vec4<f32>(0.0);
  if (QUADS > 28u) { r28 = quad(0u, q_at, 28u) * sc; }
  var r29 = vec4<f32>(0.0);
  var a29 = vec4<f32>(0.0);
  if (QUADS > 29u) { r29 = quad(0u, q_at, 29u) * sc; }
  var r30 = vec4<f32>(0.0);
  var a30 = vec4<f32>(0.0);
  if (QUADS > 30u) { r30 = quad(0u, q_at, 30u) * sc; }
  var r31 = vec4<f32>(0.0);
  var a31 = vec4<f32>(0.0);
  if (QUADS > 31u) { r31 = quad(0u, q_at, 31u) * sc; }

  // The first key sets m (WGSL has no literal for -infinity), and its rescale factor is 0 (l and the output are 0).
  var m = 0.0;
  var l = 0.0;
  let keys = select(tokens, t + 1u, params.causal != 0u);
  for (var j = 0u; j < keys; j++) {
    let kv_at = (row0 + j) * dim + col;
    var s4 = vec4<f32>(0.0);
    if (QUADS > 0u) { s4 += r0 * quad(1u, kv_at, 0u); }
    if (QUADS > 1u) { s4 += r1 * quad(1u, kv_at, 1u); }
    if (QUADS > 2u) { s4 += r2 * quad(1u, kv_at, 2u); }
    if (QUADS > 3u) { s4 += r3 * quad(1u, kv_at, 3u); }
    if (QUADS > 4u) { s4 += r4 * quad(1u, kv_at, 4u); }
    if (QUADS > 5u) { s4 += r5 * quad(1u, kv_at, 5u); }
    if (QUADS > 6u) { s4 += r6 * quad(1u, kv_at, 6u); }
    if (QUADS > 7u) { s4 += r7 * quad(1u, kv_at, 7u); }
    if (QUADS > 8u) { s4 += r8 * quad(1u, kv_at, 8u); }
    if (QUADS > 9u) { s4 += r9 * quad(1u, kv_at, 9u); }
    if (QUADS > 10u) { s4 += r10 * quad(1u, kv_at, 10u); }
    if (QUADS > 11u) { s4 += r11 * quad(1u, kv_at, 11u); }
    if (QUADS > 12u) { s4 += r12 * quad(1u, kv_at, 12u); }
    if (QUADS > 13u) { s4 += r13 * quad(1u, kv_at, 13u); }
    if (QUADS > 14u) { s4 += r14 * quad(1u, kv_at, 14u); }
    if (QUADS > 15u) { s4 += r15 * quad(1u, kv_at, 15u); }
    if (QUADS > 16u) { s4 += r16 * quad(1u, kv_at, 16u); }
    if (QUADS > 17u) { s4 += r17 * quad(1u, kv_at, 17u); }
    if (QUADS > 18u) { s4 += r18 * quad(1u, kv_at, 18u); }
    if (QUADS > 19u) { s4 += r19 * quad(1u, kv_at, 19u); }
    if (QUADS > 20u) { s4 += r20 * quad(1u, kv_at, 20u); }
    if (QUADS > 21u) { s4 += r21 * quad(1u, kv_at, 21u); }
    if (QUADS > 22u) { s4 += r22 * quad(1u, kv_at, 22u); }
    if (QUADS > 23u) { s4 += r23 * quad(1u, kv_at, 23u); }
    if (QUADS > 24u) { s4 += r24 * quad(1u, kv_at, 24u); }
    if (QUADS > 25u) { s4 += r25 * quad(1u, kv_at, 25u); }
    if (QUADS > 26u) { s4 += r26 * quad(1u, kv_at, 26u); }
    if (QUADS > 27u) { s4 += r27 * quad(1u, kv_at, 27u); }
    if (QUADS > 28u) { s4 += r28 * quad(1u, kv_at, 28u); }
    if (QUADS > 29u) { s4 += r29 * quad(1u, kv_at, 29u); }
    if (QUADS > 30u) { s4 += r30 * quad(1u, kv_at, 30u); }
    if (QUADS > 31u) { s4 += r31 * quad(1u, kv_at, 31u); }
    let s = (s4.x + s4.y) + (s4.z + s4.w);
    let m_new = select(max(m, s), s, j == 0u);
    let shrink = select(exp(m - m_new), 0.0, j == 0u);
    let p = exp(s - m_new);
    l = l * shrink + p;
    m = m_new;
    if (QUADS > 0u) { a0 = a0 * shrink + p * quad(2u, kv_at, 0u); }
    if (QUADS > 1u) { a1 = a1 * shrink + p * quad(2u, kv_at, 1u); }
    if (QUADS > 2u) { a2 = a2 * shrink + p * quad(2u, kv_at, 2u); }
    if (QUADS > 3u) { a3 = a3 * shrink + p * quad(2u, kv_at, 3u); }
    if (QUADS > 4u) { a4 = a4 * shrink + p * quad(2u, kv_at, 4u); }
    if (QUADS > 5u) { a5 = a5 * shrink + p * quad(2u, kv_at, 5u); }
    if (QUADS > 6u) { a6 = a6 * shrink + p * quad(2u, kv_at, 6u); }
    if (QUADS > 7u) { a7 = a7 * shrink + p * quad(2u, kv_at, 7u); }
    if (QUADS > 8u) { a8 = a8 * shrink + p * quad(2u, kv_at, 8u); }
    if (QUADS > 9u) { a9 = a9 * shrink + p * quad(2u, kv_at, 9u); }
    if (QUADS > 10u) { a10 = a10 * shrink + p * quad(2u, kv_at, 10u); }
    if (QUADS > 11u) { a11 = a11 * shrink + p * quad(2u, kv_at, 11u); }
    if (QUADS > 12u) { a12 = a12 * shrink + p * quad(2u, kv_at, 12u); }
    if (QUADS > 13u) { a13 = a13 * shrink + p * quad(2u, kv_at, 13u); }
    if (QUADS > 14u) { a14 = a14 * shrink + p * quad(2u, kv_at, 14u); }
    if (QUADS > 15u) { a15 = a15 * shrink + p * quad(2u, kv_at, 15u); }
    if (QUADS > 16u) { a16 = a16 * shrink + p * quad(2u, kv_at, 16u); }
    if (QUADS > 17u) { a17 = a17 * shrink + p * quad(2u, kv_at, 17u); }
    if (QUADS > 18u) { a18 = a18 * shrink + p * quad(2u, kv_at, 18u); }
    if (QUADS > 19u) { a19 = a19 * shrink + p * quad(2u, kv_at, 19u); }
    if (QUADS > 20u) { a20 = a20 * shrink + p * quad(2u, kv_at, 20u); }
    if (QUADS > 21u) { a21 = a21 * shrink + p * quad(2u, kv_at, 21u); }
    if (QUADS > 22u) { a22 = a22 * shrink + p * quad(2u, kv_at, 22u); }
    if (QUADS > 23u) { a23 = a23 * shrink + p * quad(2u, kv_at, 23u); }
    if (QUADS > 24u) { a24 = a24 * shrink + p * quad(2u, kv_at, 24u); }
    if (QUADS > 25u) { a25 = a25 * shrink + p * quad(2u, kv_at, 25u); }
    if (QUADS > 26u) { a26 = a26 * shrink + p * quad(2u, kv_at, 26u); }
    if (QUADS > 27u) { a27 = a27 * shrink + p * quad(2u, kv_at, 27u); }
    if (QUADS > 28u) { a28 = a28 * shrink + p * quad(2u, kv_at, 28u); }
    if (QUADS > 29u) { a29 = a29 * shrink + p * quad(2u, kv_at, 29u); }
    if (QUADS > 30u) { a30 = a30 * shrink + p * quad(2u, kv_at, 30u); }
    if (QUADS > 31u) { a31 = a31 * shrink + p * quad(2u, kv_at, 31u); }
  }
  let inv = 1.0 / l;
  if (QUADS > 0u) { store(q_at, 0u, a0 * inv); }
  if (QUADS > 1u) { store(q_at, 1u, a1 * inv); }
  if (QUADS > 2u) { store(q_at, 2u, a2 * inv); }
  if (QUADS > 3u) { store(q_at, 3u, a3 * inv); }
  if (QUADS > 4u) { store(q_at, 4u, a4 * inv); }
  if (QUADS > 5u) { store(q_at, 5u, a5 * inv); }
  if (QUADS > 6u) { store(q_at, 6u, a6 * inv); }
  if (QUADS > 7u) { store(q_at, 7u, a7 * inv); }
  if (QUADS > 8u) { store(q_at, 8u, a8 * inv); }
  if (QUADS > 9u) { store(q_at, 9u, a9 * inv); }
  if (QUADS > 10u) { store(q_at, 10u, a10 * inv); }
  if (QUADS > 11u) { store(q_at, 11u, a11 * inv); }
  if (QUADS > 12u) { store(q_at, 12u, a12 * inv); }
  if (QUADS > 13u) { store(q_at, 13u, a13 * inv); }
  if (QUADS > 14u) { store(q_at, 14u, a14 * inv); }
  if (QUADS > 15u) { store(q_at, 15u, a15 * inv); }
  if (QUADS > 16u) { store(q_at, 16u, a16 * inv); }
  if (QUADS > 17u) { store(q_at, 17u, a17 * inv); }
  if (QUADS > 18u) { store(q_at, 18u, a18 * inv); }
  if (QUADS > 19u) { store(q_at, 19u, a19 * inv); }
  if (QUADS > 20u) { store(q_at, 20u, a20 * inv); }
  if (QUADS > 21u) { store(q_at, 21u, a21 * inv); }
  if (QUADS > 22u) { store(q_at, 22u, a22 * inv); }
  if (QUADS > 23u) { store(q_at, 23u, a23 * inv); }
  if (QUADS > 24u) { store(q_at, 24u, a24 * inv); }
  if (QUADS > 25u) { store(q_at, 25u, a25 * inv); }
  if (QUADS > 26u) { store(q_at, 26u, a26 * inv); }
  if (QUADS > 27u) { store(q_at, 27u, a27 * inv); }
  if (QUADS > 28u) { store(q_at, 28u, a28 * inv); }
  if (QUADS > 29u) { store(q_at, 29u, a29 * inv); }
  if (QUADS > 30u) { store(q_at, 30u, a30 * inv); }
  if (QUADS > 31u) { store(q_at, 31u, a31 * inv); }
}
