/**
 * The pre-norm transformer encoder CLIP's vision and text towers share (HF `CLIPEncoder`): per layer,
 * x += out_proj(attention(q, k, v of layer_norm1(x))); x += fc2(act(fc1(layer_norm2(x)))). The towers differ only in
 * their embeddings, their pooling and the text tower's causal mask.
 */
import type { GpuContext } from '../gpu/device';
import { matmul } from '../gpu/matmul';
import { attention, biasAct, layerNorm } from './vitKernels';
import type { VisionActivation } from './visionConfig';

/** What the encoder needs of a tower's config. */
export interface EncoderShape {
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  numLayers: number;
  hiddenAct: VisionActivation;
  layerNormEps: number;
}

/** Activation buffers: residual, normed, q, k, v [rows, D]; hidden [rows, intermediate]. */
export interface EncoderBuffers {
  residual: GPUBuffer;
  normed: GPUBuffer;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  hidden: GPUBuffer;
}

/** y = x W^T + b (then the activation), or y += that with `accumulate`; W and b are `${name}.weight` and `.bias`. */
export function linear(
  ctx: GpuContext,
  weight: (name: string) => GPUBuffer,
  x: GPUBuffer,
  name: string,
  y: GPUBuffer,
  rows: number,
  inDim: number,
  outDim: number,
  opts: { accumulate?: boolean; act?: VisionActivation } = {},
): void {
  matmul(ctx, x, weight(`${name}.weight`), y, { m: rows, n: outDim, k: inDim, transB: true, beta: opts.accumulate ? 1 : 0 });
  biasAct(ctx, weight(`${name}.bias`), y, rows, outDim, opts.act ?? 'none');
}

/** Layer norm `name` over `rows` rows of width D read every `inStride` values. */
export function namedLayerNorm(ctx: GpuContext, weight: (name: string) => GPUBuffer, cfg: EncoderShape, name: string, input: GPUBuffer, out: GPUBuffer, rows: number, inStride = cfg.hiddenSize): void {
  layerNorm(ctx, weight(`${name}.weight`), weight(`${name}.bias`), input, out, { rows, dim: cfg.hiddenSize, inStride, eps: cfg.layerNormEps });
}

/** Runs every `encoder.layers.N` on the residual stream (`batch` sequences of `tokens` rows) in place. */
export function encoderLayers(ctx: GpuContext, weight: (name: string) => GPUBuffer, cfg: EncoderShape, b: EncoderBuffers, batch: number, tokens: number, causal: boolean): void {
  const { hiddenSize: d, numHeads: heads, intermediateSize: inter } = cfg;
  const rows = batch * tokens;
  const lin = (x: GPUBuffer, name: string, y: GPUBuffer, inDim: number, outDim: number, opts?: { accumulate?: boolean; act?: VisionActivation }) =>
    linear(ctx, weight, x, name, y, rows, inDim, outDim, opts);
  for (let l = 0; l < cfg.numLayers; l++) {
    const pre = `encoder.layers.${l}.`;
    namedLayerNorm(ctx, weight, cfg, `${pre}layer_norm1`, b.residual, b.normed, rows);
    lin(b.normed, `${pre}self_attn.q_proj`, b.q, d, d);
    lin(b.normed, `${pre}self_attn.k_proj`, b.k, d, d);
    lin(b.normed, `${pre}self_attn.v_proj`, b.v, d, d);
    attention(ctx, b.q, b.k, b.v, b.normed, { batch, tokens, heads, headDim: d / heads, ...(causal ? { causal: true } : {}) });
    lin(b.normed, `${pre}self_attn.out_proj`, b.residual, d, d, { accumulate: true });
    namedLayerNorm(ctx, weight, cfg, `${pre}layer_norm2`, b.residual, b.normed, rows);
    lin(b.normed, `${pre}mlp.fc1`, b.hidden, d, inter, { act: cfg.hiddenAct });
    lin(b.hidden, `${pre}mlp.fc2`, b.residual, inter, d, { accumulate: true });
  }
}
