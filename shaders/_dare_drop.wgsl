// _dare_drop.wgsl: a part, not a kernel. DARE's drop inside a fused kernel that reads raw model bytes (linear_merge
// with DROP, ties_output with DROP), bit for bit dare_drop's (dare_drop.wgsl): model r keeps entry j of its tensor
// where rng_uniform(key_r, j) >= p, times scale (SCALE: one rounded f32 product; none when the scale is 1), else +0.
// The kernel declares the pipeline constant SCALE and, in `params`, drop_parts, p, scale, drop_seed (pcgHash(seed))
// and parts: array<vec4<u32>, MAX_DROP_PARTS>, one record per tensor of the launch in thread order: (first thread,
// index of its first element in the tensor, stringId of its name, 0), the first starting at thread 0.

// The record of params.parts that thread k's block belongs to: the last whose first thread is k or before.
fn drop_part(k: u32) -> vec4<u32> {
  var lo = 0u;
  var hi = params.drop_parts;
  while (hi - lo > 1u) {
    let mid = (lo + hi) >> 1u;
    if (params.parts[mid].x <= k) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return params.parts[lo];
}

// The tensor indices of the sixteen elements of thread k's block, as four quads from its record `part`.
fn drop_index(part: vec4<u32>, k: u32) -> vec4<u32> {
  return vec4<u32>(part.y + 16u * (k - part.x)) + vec4<u32>(0u, 1u, 2u, 3u);
}

// Model r's RNG key in the tensor of id `tensor`: rngKey(seed, r, tensor) (src/engine/rng.ts).
fn key_of(r: u32, tensor: u32) -> u32 {
  return pcg_hash(pcg_hash(params.drop_seed ^ r) ^ tensor);
}

// One quad after the drop: +0 where dropped, kept lanes scaled (SCALE).
fn drop4(tau: vec4<f32>, key: u32, index: vec4<u32>) -> vec4<f32> {
  let kept = select(tau, tau * params.scale, SCALE);
  return select(kept, vec4<f32>(0.0), rng_uniform4(key, index) < vec4<f32>(params.p));
}
