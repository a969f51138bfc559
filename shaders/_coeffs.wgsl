// _coeffs.wgsl: a part, not a kernel (see _raw_block.wgsl for how parts are loaded). For the fused output kernels
// (linear_merge, magmax_output, ties_output), whose uniform `params` ends in `coeffs: array<vec4<f32>, ...>` with
// model r's coefficient at coeffs[r / 4][r % 4]. Such a kernel declares the pipeline constant SAME_COEFF (true when
// the host found every coefficient bit for bit equal), reads `first_coeff()` once before its loop over the models,
// and takes `coeff_of(r, first)` per model.
//
// Why not coeffs[r >> 2u][r & 3u] per model: a CPU-emulated device runs each lane on its own, so that uniform load
// with a dynamic component is four lookups per lane; with one coefficient read outside the loop, Task Arithmetic's
// kernel ran about 30% faster on SwiftShader, and with the three selects below instead of the dynamic component
// about 16% faster.

fn first_coeff() -> f32 {
  return params.coeffs[0].x;
}

// Branch-free: a CPU-emulated device runs both sides of every branch (masked), and the early-return form ran 15%
// slower; with SAME_COEFF the compiler drops the unused load.
fn coeff_of(r: u32, first: f32) -> f32 {
  let v = params.coeffs[r >> 2u];
  let j = r & 3u;
  return select(select(select(v.z, v.w, j == 3u), select(v.x, v.y, j == 1u), j < 2u), first, SAME_COEFF);
}
