/**
 * Launchers for the vision transformer's own kernels (shaders/vit_*.wgsl); its matrix products go through
 * src/engine/gpu/matmul.ts. Each launcher checks its sizes, binds exactly the elements the kernel touches (so a
 * too-small buffer fails here, naming the kernel and buffer, instead of being clamped silently) and submits one
 * pass. src/engine/reference/vit.ts is the CPU twin of the whole forward pass.
 */
import { GpuError } from '../errors';
import { VIT_MAX_HEAD_DIM } from '../gpu/constants';
import type { GpuContext } from '../gpu/device';
import { itemGrid } from '../gpu/dispatch';
import { specialisedPipeline } from '../gpu/kernels';
import { bind, f32Bits, launch } from '../gpu/launch';
import type { VisionActivation } from './visionConfig';

const F32_BYTES = 4;

/** Activation codes of vit_bias_act. */
const ACTIVATION_CODE: Record<VisionActivation | 'none', number> = { none: 0, quick_gelu: 1, gelu: 2 };

function checkSizes(kernel: string, sizes: Record<string, number>): void {
  for (const [what, n] of Object.entries(sizes)) {
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) {
      throw new GpuError('validation', `${kernel}: ${what} must be a positive 32-bit integer, got ${n}`);
    }
  }
}

/** Binding of `elements` f32s of `buf`. */
function bindF32(ctx: GpuContext, kernel: string, buf: GPUBuffer, elements: number): GPUBufferBinding {
  return bind(ctx, kernel, buf, elements * F32_BYTES);
}

function grid(ctx: GpuContext, items: number): { x: number; y: number } {
  return itemGrid(items, ctx.info.limits.maxComputeWorkgroupsPerDimension);
}

/** Unfolds images [B, C, S, S] into patch rows [B * N, C * P * P] (vit_im2col). */
export function im2col(
  ctx: GpuContext,
  images: GPUBuffer,
  cols: GPUBuffer,
  shape: { batch: number; channels: number; imageSize: number; patchSize: number },
): void {
  const { batch, channels, imageSize, patchSize } = shape;
  checkSizes('vit_im2col', shape);
  if (imageSize % patchSize !== 0) throw new GpuError('validation', `vit_im2col: image size ${imageSize} is not a multiple of patch size ${patchSize}`);
  const pixels = batch * channels * imageSize * imageSize;
  const bindings = [bindF32(ctx, 'vit_im2col', images, pixels), bindF32(ctx, 'vit_im2col', cols, pixels)];
  launch(ctx, 'vit_im2col', [pixels, channels, imageSize, patchSize, imageSize / patchSize], bindings, grid(ctx, pixels));
}

/** Writes the CLS row and adds position embeddings to the token rows x [B, T, D] in place (vit_embed). */
export function embedTokens(ctx: GpuContext, cls: GPUBuffer, pos: GPUBuffer, x: GPUBuffer, batch: number, tokens: number, dim: number): void {
  checkSizes('vit_embed', { batch, tokens, dim });
  const total = batch * tokens * dim;
  const bindings = [bindF32(ctx, 'vit_embed', cls, dim), bindF32(ctx, 'vit_embed', pos, tokens * dim), bindF32(ctx, 'vit_embed', x, total)];
  launch(ctx, 'vit_embed', [total, tokens, dim], bindings, grid(ctx, total));
}

/** Layer norm of `rows` rows read `inStride` elements apart in `input`, written densely to `out` (vit_layer_norm). */
export function layerNorm(
  ctx: GpuContext,
  gamma: GPUBuffer,
  beta: GPUBuffer,
  input: GPUBuffer,
  out: GPUBuffer,
  shape: { rows: number; dim: number; inStride: number; eps: number },
): void {
  const { rows, dim, inStride, eps } = shape;
  checkSizes('vit_layer_norm', { rows, dim, inStride });
  if (inStride < dim) throw new GpuError('validation', `vit_layer_norm: row stride ${inStride} is below the row width ${dim}`);
  const bindings = [
    bindF32(ctx, 'vit_layer_norm', gamma, dim),
    bindF32(ctx, 'vit_layer_norm', beta, dim),
    bindF32(ctx, 'vit_layer_norm', input, (rows - 1) * inStride + dim),
    bindF32(ctx, 'vit_layer_norm', out, rows * dim),
  ];
  launch(ctx, 'vit_layer_norm', [rows, dim, inStride, f32Bits(eps)], bindings, grid(ctx, rows));
}

/**
 * Softmax attention of every image, head and query token: q, k, v, out [B * T, heads * headDim] (vit_attention);
 * `causal` lets token t attend only to tokens 0..t (the CLIP text tower's mask).
 */
export function attention(
  ctx: GpuContext,
  q: GPUBuffer,
  k: GPUBuffer,
  v: GPUBuffer,
  out: GPUBuffer,
  shape: { batch: number; tokens: number; heads: number; headDim: number; causal?: boolean },
): void {
  const { batch, tokens, heads, headDim } = shape;
  checkSizes('vit_attention', { batch, tokens, heads, headDim });
  if (headDim > VIT_MAX_HEAD_DIM) {
    throw new GpuError('validation', `vit_attention: head size ${headDim} is above the kernel's limit of ${VIT_MAX_HEAD_DIM}`);
  }
  const elements = batch * tokens * heads * headDim;
  const bindings = [q, k, v, out].map((buf) => bindF32(ctx, 'vit_attention', buf, elements));
  // Head slices of whole vec4s (every CLIP model's): q, k and v are bound again as vec4s. Otherwise those views are
  // unused and take a 16-byte placeholder.
  const vec4 = headDim % 4 === 0;
  const placeholder = vec4 ? null : ctx.createBuffer('vit_attention unused vec4 view', 16, GPUBufferUsage.STORAGE);
  try {
    const views = [q, k, v].map((buf) => (placeholder ? { buffer: placeholder } : bindF32(ctx, 'vit_attention', buf, elements)));
    const params = [batch, tokens, heads, headDim, f32Bits(1 / Math.sqrt(headDim)), shape.causal ? 1 : 0];
    // QUADS: the head slice's quads of four, which the kernel keeps in registers (one pipeline per head size).
    const pipeline = specialisedPipeline(ctx, 'vit_attention', { VEC4: vec4 ? 1 : 0, QUADS: Math.ceil(headDim / 4) });
    launch(ctx, 'vit_attention', params, [...bindings, ...views], grid(ctx, batch * heads * tokens), { pipeline });
  } finally {
    if (placeholder) ctx.destroyBuffer(placeholder);
  }
}

/** y[r, c] = act(y[r, c] + bias[c]) in place for y [rows, cols] (vit_bias_act). */
export function biasAct(ctx: GpuContext, bias: GPUBuffer, y: GPUBuffer, rows: number, cols: number, act: VisionActivation | 'none'): void {
  checkSizes('vit_bias_act', { rows, cols });
  const total = rows * cols;
  const bindings = [bindF32(ctx, 'vit_bias_act', bias, cols), bindF32(ctx, 'vit_bias_act', y, total)];
  const pipeline = specialisedPipeline(ctx, 'vit_bias_act', { ACT: ACTIVATION_CODE[act] });
  launch(ctx, 'vit_bias_act', [total, cols], bindings, grid(ctx, total), { pipeline });
}

/** out[r, :] = input[r, :] * scale / max(||input[r, :]||, 1e-12) for [rows, dim] (vit_l2_normalize). */
export function l2Normalize(ctx: GpuContext, input: GPUBuffer, out: GPUBuffer, rows: number, dim: number, scale: number): void {
  checkSizes('vit_l2_normalize', { rows, dim });
  if (!Number.isFinite(scale)) throw new GpuError('validation', `vit_l2_normalize: scale must be finite, got ${scale}`);
  const bindings = [bindF32(ctx, 'vit_l2_normalize', input, rows * dim), bindF32(ctx, 'vit_l2_normalize', out, rows * dim)];
  launch(ctx, 'vit_l2_normalize', [rows, dim, f32Bits(scale)], bindings, grid(ctx, rows));
}
