// matmul: C = alpha * op(A) op(B) + beta * C for a batch of row-major f32 matrices, op = identity or transpose.
//
// Bindings (group 0):
//   0  params  uniform Params (below); alpha and beta are f32 bit patterns written by the host
//   1  a       storage, read        array<f32>        A, any layout (scalar loads)
//   2  a4      storage, read        array<vec4<f32>>  the same buffer as vec4s (read only when A_VEC4)
//   3  b       storage, read        array<f32>        B
//   4  b4      storage, read        array<vec4<f32>>  the same buffer as vec4s (read only when B_VEC4)
//   5  c       storage, read_write  array<f32>        C [m, n] per batch entry; must not be A's or B's buffer
// Layout: op(A)[i][l] = a[off_a + t * stride_a + (TRANS_A ? l * m + i : i * k + l)] for batch entry t; op(B)[l][j] =
// b[off_b + t * stride_b + (TRANS_B ? j * k + l : l * n + j)]; C[i][j] = c[off_c + t * stride_c + i * n + j].
// Dispatch: one workgroup of 8 x 8 threads per MATMUL_TILE x MATMUL_TILE tile of C per batch entry, tiles_m *
// tiles_n * batch workgroups on a 2-D grid (workgroup_index); tile index = (t * tiles_m + tile_row) * tiles_n + tile_col.
// Each thread keeps an 8 x 8 block of C in registers and walks l in steps of 4, loading two 4 x 4 blocks of op(A)
// and two of op(B) per step: as vec4s when the pipeline has A_VEC4 / B_VEC4 (the operand's contiguous direction,
// offset and batch stride are multiples of 4), else as scalars. No workgroup memory and no barriers: on CPU implementations
// (SwiftShader) barriers cost ~10x, and on GPUs the caches serve the reuse between neighbouring threads.
// Bounds: rows/columns past m, n are clamped on load and not stored; the l tail past k loads zeros; surplus
// workgroups return. Without READ_C (beta = 0) the old C is never read.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  flags: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
  tiles_m: u32,
  off_a: u32,
  off_b: u32,
  off_c: u32,
  tiles_n: u32,
  alpha: f32,
  beta: f32,
  batch: u32,
}

// Layout of the operands, fixed per pipeline (the host creates one pipeline per combination it uses): branching on
// uniforms inside the l loop costs ~7x on SwiftShader, while constants let the compiler drop the unused paths.
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override A_VEC4: bool = false;
override B_VEC4: bool = false;

// params.flags bit: beta != 0, so the old C is read.
const READ_C: u32 = 1u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;


// A 4 x 4 block of a stored row-major matrix: vector v holds stored row min(r0 + v, rmax), columns c0..c0+3.
// Scalar loads clamp the column to cmax, so blocks may hang over the matrix's edge; vec4 loads need c0, ld and
// base multiples of 4 and c0 + 3 <= cmax. `from_a` picks the operand. The branches depend on uniforms only.
fn load_block(from_a: bool, use_vec4: bool, base: u32, ld: u32, r0: u32, rmax: u32, c0: u32, cmax: u32) -> mat4x4<f32> {
  let r = min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(rmax));
  let row = vec4<u32>(base) + r * ld;
  if (use_vec4) {
    let v = (row + vec4<u32>(c0)) >> vec4<u32>(2u);
    if (from_a) {
      return mat4x4<f32>(a4[v.x], a4[v.y], a4[v.z], a4[v.w]);
    }
    return mat4x4<f32>(b4[v.x], b4[v.y], b4[v.z], b4[v.w]);
  }
  let c = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(cmax));
  let i0 = row.x + c;
  let i1 = row.y + c;
  let i2 = row.z + c;
  let i3 = row.w + c;
  if (from_a) {
    return mat4x4<f32>(
      vec4<f32>(a[i0.x], a[i0.y], a[i0.z], a[i0.w]),
      vec4<f32>(a[i1.x], a[i1.y], a[i1.z], a[i1.w]),
      vec4<f32>(a[i2.x], a[i2.y], a[i2.z], a[i2.w]),
      vec4<f32>(a[i3.x], a[i3.y], a[i3.z], a[i3.w]),
    );
  }
  return mat4x4<f32>(
    vec4<f32>(b[i0.x], b[i0.y], b[i0.z], b[i0.w]),
    vec4<f32>(b[i1.x], b[i1.y], b[i1.z], b[i1.w]),
    vec4<f32>(b[i2.x], b[i2.y], b[i2.z], b[i2.w]),
    vec4<f32>(b[i3.x], b[i3.y], b[i3.z], b[i3.w]),
  );
}

// Column r = op(A)[i0 + r][l..l+3]. A is stored [m, k] (rows i, contiguous l) or, transposed, [k, m].
fn a_block(use_vec4: bool, base: u32, i0: u32, l: u32) -> mat4x4<f32> {
  let p = params;
  if (TRANS_A) {
    return transpose(load_block(true, use_vec4, base, p.m, l, p.k - 1u, i0, p.m - 1u));
  }
  return load_block(true, use_vec4, base, p.k, i0, p.m - 1u, l, p.k - 1u);
}

// Column q = op(B)[l + q][j0..j0+3]. B is stored [k, n] (rows l, contiguous j) or, transposed, [n, k].
fn b_block(use_vec4: bool, base: u32, l: u32, j0: u32) -> mat4x4<f32> {
  let p = params;
  if (TRANS_B) {
    return transpose(load_block(false, use_vec4, base, p.k, j0, p.n - 1u, l, p.k - 1u));
  }
  return load_block(false, use_vec4, base, p.n, l, p.k - 1u, j0, p.n - 1u);
}

// op(A) and op(B) blocks of the l tail: scalar loads clamped to the last l, the entries past k zeroed.
fn tail_a(base_a: u32, i0: u32, k4: u32) -> mat4x4<f32> {
  let keep = vec4<u32>(k4, k4 + 1u, k4 + 2u, k4 + 3u) < vec4<u32>(params.k);
  let z = vec4<f32>();
  let ab = a_block(false, base_a, i0, k4);
  return mat4x4<f32>(select(z, ab[0], keep), select(z, ab[1], keep), select(z, ab[2], keep), select(z, ab[3], keep));
}

fn tail_b(base_b: u32, j0: u32, k4: u32) -> mat4x4<f32> {
  let keep = vec4<u32>(k4, k4 + 1u, k4 + 2u, k4 + 3u) < vec4<u32>(params.k);
  let z = vec4<f32>();
  let bb = b_block(false, base_b, k4, j0);
  return mat4x4<f32>(select(z, bb[0], keep.x), select(z, bb[1], keep.y), select(z, bb[2], keep.z), select(z, bb[3], keep.w));
}

// Writes column r of acc to C[i0 + r][j0..j0+3] (alpha, beta applied), skipping rows and columns past m, n.
fn store_block(acc: mat4x4<f32>, base_c: u32, i0: u32, j0: u32) {
  let p = params;
  for (var r = 0u; r < 4u; r++) {
    if (i0 + r < p.m) {
      for (var e = 0u; e < 4u; e++) {
        if (j0 + e < p.n) {
          let idx = base_c + (i0 + r) * p.n + j0 + e;
          var val = p.alpha * acc[r][e];
          if ((p.flags & READ_C) != 0u) {
            val += p.beta * c[idx];
          }
          c[idx] = val;
        }
      }
    }
  }
}

@compute @workgroup_size(8, 8)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let p = params;
  let w = workgroup_index(wg, nwg);
  let tiles = p.tiles_m * p.tiles_n;
  if (w >= tiles * p.batch) {
    return;
  }
  let t = w / tiles;
  let i0 = (w % tiles) / p.tiles_n * MATMUL_TILE + lid.y * 8u;
  let j0 = (w % p.tiles_n) * MATMUL_TILE + lid.x * 8u;
  if (i0 >= p.m || j0 >= p.n) {
    return;
  }
  let base_a = p.off_a + t * p.stride_a;
  let base_b = p.off_b + t * p.stride_b;
  // The thread's 8 x 8 block of C as four 4 x 4 accumulators: acc_rc holds rows i0 + 4r.., columns j0 + 4c.. (its
  // column q is row i0 + 4r + q of C); each step adds op(B) block * op(A) block, i.e. for every row the sum over q of
  // op(A)[row][l + q] * op(B)[l + q][cols]. Each step loads two 4 x 4 blocks of op(A) and two of op(B) for 256 multiply-adds
  // (a 4 x 4 block per thread made 64 per four loads: 1.5-1.7x slower on SwiftShader). Blocks past m or n read
  // clamped rows and columns and are not stored.
  var acc00 = mat4x4<f32>();
  var acc01 = mat4x4<f32>();
  var acc10 = mat4x4<f32>();
  var acc11 = mat4x4<f32>();
  let k4 = p.k & ~3u;
  for (var l = 0u; l < k4; l += 4u) {
    let a0 = a_block(A_VEC4, base_a, i0, l);
    let a1 = a_block(A_VEC4, base_a, i0 + 4u, l);
    let b0 = b_block(B_VEC4, base_b, l, j0);
    let b1 = b_block(B_VEC4, base_b, l, j0 + 4u);
    acc00 += b0 * a0;
    acc01 += b1 * a0;
    acc10 += b0 * a1;
    acc11 += b1 * a1;
  }
  if (k4 < p.k) {
    let a0 = tail_a(base_a, i0, k4);
    let a1 = tail_a(base_a, i0 + 4u, k4);
    let b0 = tail_b(base_b, j0, k4);
    let b1 = tail_b(base_b, j0 + 4u, k4);
    acc00 += b0 * a0;
    acc01 += b1 * a0;
    acc10 += b0 * a1;
    acc11 += b1 * a1;
  }
  let base_c = p.off_c + t * p.stride_c;
  store_block(acc00, base_c, i0, j0);
  store_block(acc01, base_c, i0, j0 + 4u);
  store_block(acc10, base_c, i0 + 4u, j0);
  store_block(acc11, base_c, i0 + 4u, j0 + 4u);
}
