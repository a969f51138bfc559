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
// The head loops go four elements at a time (scalar loops were most of the kernel's time on SwiftShader): pipeline
// constant VEC4 (head_dim a multiple of 4, as in every CLIP model) reads q, k and v as vec4s; without it each quad
// is assembled from scalar loads, the last one zero-padded.
// Dispatch: one thread per (image, head, query token), index (b * heads + h) * T + t, WORKGROUP_SIZE threads per
// workgroup, on a 2-D grid (flat_index). Each thread keeps its scaled query and its output row in private arrays of
// vec4s (head_dim <= VIT_MAX_HEAD_DIM, checked by the host) and makes one pass over the keys with an online softmax
// (running maximum m and denominator l; when m grows, l and the output are rescaled by exp(m_old - m_new)).
// Barrier-free: neighbouring threads read the same keys and values, which the caches share. Sequences are short
// in vision transformers (50 tokens for ViT-B/32), so a thread per query gives enough parallelism.
// Bounds: threads past batch * heads * tokens do nothing.

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
  // The head slice as quads of four (the last one zero-padded without VEC4).
  let quads = (hd + 3u) / 4u;

  var query: array<vec4<f32>, VIT_MAX_HEAD_DIM / 4u>;
  var acc: array<vec4<f32>, VIT_MAX_HEAD_DIM / 4u>;
  let q_at = (row0 + t) * dim + col;
  for (var e = 0u; e < quads; e++) {
    query[e] = quad(0u, q_at, e) * params.scale;
    acc[e] = vec4<f32>(0.0);
  }
  // Starting from the first key's score avoids needing an infinity (WGSL has no literal for it).
  var m = 0.0;
  var l = 0.0;
  let keys = select(tokens, t + 1u, params.causal != 0u);
  for (var j = 0u; j < keys; j++) {
    let kv_at = (row0 + j) * dim + col;
    var s4 = vec4<f32>(0.0);
    for (var e = 0u; e < quads; e++) {
      s4 += query[e] * quad(1u, kv_at, e);
    }
    let s = (s4.x + s4.y) + (s4.z + s4.w);
    if (j == 0u) {
      m = s;
    } else if (s > m) {
      let shrink = exp(m - s);
      l *= shrink;
      for (var e = 0u; e < quads; e++) {
        acc[e] *= shrink;
      }
      m = s;
    }
    let p = exp(s - m);
    l += p;
    for (var e = 0u; e < quads; e++) {
      acc[e] += p * quad(2u, kv_at, e);
    }
  }
  let inv = 1.0 / l;
  for (var e = 0u; e < quads; e++) {
    let o = acc[e] * inv;
    for (var c = 0u; c < 4u; c++) {
      if (4u * e + c < hd) {
        out[q_at + 4u * e + c] = o[c];
      }
    }
  }
}
