/**
 * Counter-based random numbers shared bit for bit by the CPU reference and WGSL (shaders/common.wgsl,
 * `rng_uniform`). A value depends only on (seed, stream, tensor id, element index), never on the order in
 * which elements are visited, so DARE masks are identical on CPU and GPU, across runs and across chunking.
 *
 * The mixer is the PCG output permutation (RXS-M-XS) applied as a hash; all arithmetic is u32.
 */

/** PCG-style 32-bit hash (state step + RXS-M-XS output). Mirrors `pcg_hash` in common.wgsl. */
export function pcgHash(input: number): number {
  const state = (Math.imul(input >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** FNV-1a hash of a string (UTF-16 code units): turns a tensor name into a stable 32-bit id. */
export function stringId(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The per-(seed, stream, tensor) key; the GPU receives it as one u32 uniform. Mirrors the host side of WGSL. */
export function rngKey(seed: number, stream: number, tensorId: number): number {
  return pcgHash((pcgHash((pcgHash(seed >>> 0) ^ (stream >>> 0)) >>> 0) ^ (tensorId >>> 0)) >>> 0);
}

/** Random u32 for element `index` under `key`. Mirrors `rng_u32` in common.wgsl. */
export function rngU32(key: number, index: number): number {
  return pcgHash((pcgHash(index >>> 0) ^ key) >>> 0);
}

/** Uniform float in [0, 1) with 24 random bits (exact in f32). Mirrors `rng_uniform` in common.wgsl. */
export function rngUniform(key: number, index: number): number {
  return (rngU32(key, index) >>> 8) * 5.9604644775390625e-8; // 2^-24
}
