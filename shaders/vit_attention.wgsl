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
// Pipeline constant VEC4: head_dim is a multiple of 4, so every head slice is whole vec4s: the query, the output row
// and the key and value reads go four at a time (the head loops were most of the kernel's time on SwiftShader).
// Dispatch: one thread per (image, head, query token), index (b * heads + h) * T + t, WORKGROUP_SIZE threads per
// workgroup, on a 2-D grid (flat_index). Each thread keeps its scaled query and its output row in private arrays
// (head_dim <= VIT_MAX_HEAD_DIM, checked by the host) and makes one pass over the keys with an online softmax
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

// The VEC4 path of main for thread (b, h, t): the same online softmax, each head slice as hd / 4 vec4s (the dot
// product's four lanes are added at the end of each key).
fn attend4(row0: u32, t: u32, col: u32, dim: u32) {
  let hd4 = params.head_dim / 4u;
  var query: array<vec4<f32>, VIT_MAX_HEAD_DIM / 4u>;
  var acc: array<vec4<f32>, VIT_MAX_HEAD_DIM / 4u>;
  let q_at = ((row0 + t) * dim + col) / 4u;
  for (var e = 0u; e < hd4; e++) {
    query[e] = q4[q_at + e] * params.scale;
    acc[e] = vec4<f32>(0.0);
  }
  var m = 0.0;
  var l = 0.0;
  let keys = select(params.tokens, t + 1u, params.causal != 0u);
  for (var j = 0u; j < keys; j++) {
    let kv_at = ((row0 + j) * dim + col) / 4u;
    var s4 = vec4<f32>(0.0);
    for (var e = 0u; e < hd4; e++) {
      s4 += query[e] * k4[kv_at + e];
    }
    let s = (s4.x + s4.y) + (s4.z + s4.w);
    if (j == 0u) {
      m = s;
    } else if (s > m) {
      let shrink = exp(m - s);
      l *= shrink;
      for (var e = 0u; e < hd4; e++) {
        acc[e] *= shrink;
      }
      m = s;
    }
    let p = exp(s - m);
    l += p;
    for (var e = 0u; e < hd4; e++) {
      acc[e] += p * v4[kv_at + e];
    }
  }
  let inv = 1.0 / l;
  let out_at = (row0 + t) * dim + col;
  for (var e = 0u; e < hd4; e++) {
    let o = acc[e] * inv;
    out[out_at + 4u * e] = o.x;
    out[out_at + 4u * e + 1u] = o.y;
    out[out_at + 4u * e + 2u] = o.z;
    out[out_at + 4u * e + 3u] = o.w;
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
  if (VEC4) {
    attend4(row0, t, col, dim);
    return;
  }

  var query: array<f32, VIT_MAX_HEAD_DIM>;
  var acc: array<f32, VIT_MAX_HEAD_DIM>;
  let q_at = (row0 + t) * dim + col;
  for (var e = 0u; e < hd; e++) {
    query[e] = q[q_at + e] * params.scale;
    acc[e] = 0.0;
  }
  // Starting from the first key's score avoids needing an infinity (WGSL has no literal for it).
  var m = 0.0;
  var l = 0.0;
  let keys = select(tokens, t + 1u, params.causal != 0u);
  for (var j = 0u; j < keys; j++) {
    let kv_at = (row0 + j) * dim + col;
    var s = 0.0;
    for (var e = 0u; e < hd; e++) {
      s += query[e] * k[kv_at + e];
    }
    if (j == 0u) {
      m = s;
    } else if (s > m) {
      let shrink = exp(m - s);
      l *= shrink;
      for (var e = 0u; e < hd; e++) {
        acc[e] *= shrink;
      }
      m = s;
    }
    let p = exp(s - m);
    l += p;
    for (var e = 0u; e < hd; e++) {
      acc[e] += p * v[kv_at + e];
    }
  }
  let inv = 1.0 / l;
  for (var e = 0u; e < hd; e++) {
    out[q_at + e] = acc[e] * inv;
  }
}
