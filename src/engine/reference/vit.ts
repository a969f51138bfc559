/**
 * CPU twin of the GPU vision transformer (src/engine/eval/vit.ts): the readable spec of a CLIP vision tower plus
 * classification head, in float64 over Float64Array weights, with the same layout conventions as the GPU path
 * (row-major [rows, cols] activations, weights [out, in] as in PyTorch checkpoints). Shapes are given in
 * parentheses: B images, C channels, T = N + 1 tokens (CLS first, then the N patches row by row), D hidden size,
 * H heads of size hd = D / H, I intermediate size, F feature size, K classes.
 *
 * Forward pass (Hugging Face CLIPVisionModel, pre-LN):
 *   x = [class_embedding; conv_P(image)] + position_embedding        (B, T, D)
 *   x = pre_layrnorm(x)
 *   per layer: x = x + out_proj(attention(layer_norm1(x)));  x = x + fc2(act(fc1(layer_norm2(x))))
 *   features = post_layernorm(x[:, 0]) (times visual_projection^T when present)   (B, F)
 *   logits = scale * normalize(features) . normalize(head rows)  (zero-shot)  or  features W^T + b  (linear)
 */
import { argmaxRows } from '../eval/evaluate';
import { resolveVisionWeights, tokenCount, type VisionConfig } from '../eval/visionConfig';
import type { RefModel } from './refModel';

/** Looks up a weight by canonical name (the checkpoint name without `vision_model.`). */
export type RefWeights = (name: string) => Float64Array;

/** A classification head on the features (see src/engine/eval/vit.ts's Head). */
export type RefHead =
  | { kind: 'zero-shot'; weight: Float64Array; classes: number; dim: number; logitScale: number }
  | { kind: 'linear'; weight: Float64Array; bias: Float64Array; classes: number; dim: number };

/** erf(x) to about 1e-14: Taylor series for |x| < 3, the Laplace continued fraction of erfc beyond. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = x;
    let sum = x;
    for (let n = 1; n < 100 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(-a^2) / sqrt(pi) / (a + (1/2) / (a + 1 / (a + (3/2) / (a + ...)))), evaluated from the tail.
  let f = a;
  for (let n = 60; n >= 1; n--) f = a + n / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** The MLP activation, elementwise. */
export function activationRef(x: number, act: VisionConfig['hiddenAct']): number {
  if (act === 'quick_gelu') return x / (1 + Math.exp(-1.702 * x));
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** y = x W^T (+ b): x (rows, inDim), W (outDim, inDim), b (outDim) -> y (rows, outDim). */
export function linearRef(x: Float64Array, rows: number, w: Float64Array, b: Float64Array | null, inDim: number, outDim: number): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let sum = b ? b[o]! : 0;
      for (let i = 0; i < inDim; i++) sum += x[r * inDim + i]! * w[o * inDim + i]!;
      y[r * outDim + o] = sum;
    }
  }
  return y;
}

/**
 * Layer norm of `rows` rows of width `dim` read `inStride` elements apart in x, written densely:
 * y = (x - mean) / sqrt(var + eps) * gamma + beta, with the biased (1/dim) variance.
 */
export function layerNormRef(x: Float64Array, rows: number, dim: number, inStride: number, gamma: Float64Array, beta: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * inStride, r * inStride + dim);
    let mean = 0;
    for (const v of row) mean += v;
    mean /= dim;
    let variance = 0;
    for (const v of row) variance += (v - mean) ** 2;
    variance /= dim;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = (row[i]! - mean) * inv * gamma[i]! + beta[i]!;
  }
  return y;
}

/**
 * Multi-head self-attention without projections: q, k, v (B*T, D) with head h in columns h*hd..(h+1)*hd-1;
 * out[b, t, head h] = softmax_j(q_t . k_j / sqrt(hd)) v_j over the T tokens j of image b, or only j <= t when
 * `causal` (the text tower's mask).
 */
export function attentionRef(q: Float64Array, k: Float64Array, v: Float64Array, batch: number, tokens: number, heads: number, headDim: number, causal = false): Float64Array {
  const d = heads * headDim;
  const out = new Float64Array(batch * tokens * d);
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(tokens);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const col = h * headDim;
      for (let t = 0; t < tokens; t++) {
        const qRow = (b * tokens + t) * d + col;
        const keys = causal ? t + 1 : tokens;
        let max = -Infinity;
        for (let j = 0; j < keys; j++) {
          const kRow = (b * tokens + j) * d + col;
          let s = 0;
          for (let e = 0; e < headDim; e++) s += q[qRow + e]! * k[kRow + e]!;
          scores[j] = s * scale;
          max = Math.max(max, scores[j]!);
        }
        let total = 0;
        for (let j = 0; j < keys; j++) {
          scores[j] = Math.exp(scores[j]! - max);
          total += scores[j]!;
        }
        for (let j = 0; j < keys; j++) {
          const p = scores[j]! / total;
          const vRow = (b * tokens + j) * d + col;
          for (let e = 0; e < headDim; e++) out[qRow + e] = out[qRow + e]! + p * v[vRow + e]!;
        }
      }
    }
  }
  return out;
}

/** CLS + patch embeddings plus position embeddings: images (B, C, S, S) -> x (B*T, D). */
export function embedRef(config: VisionConfig, weights: RefWeights, images: ArrayLike<number>, batch: number): Float64Array {
  const { hiddenSize: d, patchSize: p, numChannels: c, imageSize: size } = config;
  const grid = size / p;
  const tokens = tokenCount(config);
  const conv = weights('embeddings.patch_embedding.weight'); // (D, C, P, P)
  const cls = weights('embeddings.class_embedding');
  const pos = weights('embeddings.position_embedding.weight'); // (T, D)
  const x = new Float64Array(batch * tokens * d);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      // Token t >= 1 is patch t - 1, numbered row by row over the grid.
      const gy = Math.floor((t - 1) / grid);
      const gx = (t - 1) % grid;
      for (let o = 0; o < d; o++) {
        let v = cls[o]!;
        if (t > 0) {
          v = 0;
          for (let ch = 0; ch < c; ch++) {
            for (let i = 0; i < p; i++) {
              for (let j = 0; j < p; j++) {
                const pixel = images[((b * c + ch) * size + gy * p + i) * size + gx * p + j]!;
                v += pixel * conv[((o * c + ch) * p + i) * p + j]!;
              }
            }
          }
        }
        x[(b * tokens + t) * d + o] = v + pos[t * d + o]!;
      }
    }
  }
  return x;
}

/** The sizes an encoder layer needs (a vision or a text config). */
type EncoderSizes = Pick<VisionConfig, 'hiddenSize' | 'intermediateSize' | 'numHeads' | 'numLayers' | 'layerNormEps' | 'hiddenAct'>;

/**
 * The pre-LN encoder layers of CLIP's towers on x (B*T, D):
 *   x = x + out_proj(attention(layer_norm1(x)));  x = x + fc2(act(fc1(layer_norm2(x))))
 * with `causal` attention in the text tower.
 */
export function encoderRef(config: EncoderSizes, weights: RefWeights, input: Float64Array, batch: number, tokens: number, causal: boolean): Float64Array {
  const { hiddenSize: d, intermediateSize: inter, numHeads: heads, layerNormEps: eps } = config;
  const rows = batch * tokens;
  let x = input;
  for (let l = 0; l < config.numLayers; l++) {
    const pre = `encoder.layers.${l}.`;
    const ln = (h: Float64Array, name: string) => layerNormRef(h, rows, d, d, weights(`${pre}${name}.weight`), weights(`${pre}${name}.bias`), eps);
    const lin = (h: Float64Array, name: string, inDim: number, outDim: number) =>
      linearRef(h, rows, weights(`${pre}${name}.weight`), weights(`${pre}${name}.bias`), inDim, outDim);

    const h1 = ln(x, 'layer_norm1');
    const [q, k, v] = ['q_proj', 'k_proj', 'v_proj'].map((proj) => lin(h1, `self_attn.${proj}`, d, d)) as [Float64Array, Float64Array, Float64Array];
    const attn = lin(attentionRef(q, k, v, batch, tokens, heads, d / heads, causal), 'self_attn.out_proj', d, d);
    x = x.map((xi, i) => xi + attn[i]!);

    const hidden = lin(ln(x, 'layer_norm2'), 'mlp.fc1', d, inter).map((u) => activationRef(u, config.hiddenAct));
    const mlp = lin(hidden, 'mlp.fc2', inter, d);
    x = x.map((xi, i) => xi + mlp[i]!);
  }
  return x;
}

/** Features (B, F) of `batch` images (B, C, S, S), already normalised. */
export function vitFeaturesRef(config: VisionConfig, weights: RefWeights, images: ArrayLike<number>, batch: number): Float64Array {
  const { hiddenSize: d, layerNormEps: eps } = config;
  const tokens = tokenCount(config);
  const rows = batch * tokens;
  const expected = batch * config.numChannels * config.imageSize ** 2;
  if (images.length < expected) throw new RangeError(`vitFeaturesRef: ${images.length} pixel values for ${batch} images, need ${expected}`);
  const ln = (x: Float64Array, name: string, n: number, stride: number) =>
    layerNormRef(x, n, d, stride, weights(`${name}.weight`), weights(`${name}.bias`), eps);

  const x = encoderRef(config, weights, ln(embedRef(config, weights, images, batch), 'pre_layrnorm', rows, d), batch, tokens, false);
  // The CLS token of each image: row b * T.
  const pooled = ln(x, 'post_layernorm', batch, tokens * d);
  if (config.projectionDim === null) return pooled;
  return linearRef(pooled, batch, weights('visual_projection.weight'), null, d, config.projectionDim);
}

/** Each row of (rows, dim) scaled to unit L2 norm, then by `scale` (norms below 1e-12 count as 1e-12). */
export function l2NormalizeRef(x: Float64Array, rows: number, dim: number, scale: number): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let i = 0; i < dim; i++) sq += x[r * dim + i]! ** 2;
    const factor = scale / Math.max(Math.sqrt(sq), 1e-12);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i]! * factor;
  }
  return y;
}

/** Logits (B, K) of features (B, F) under a head. */
export function vitLogitsRef(features: Float64Array, batch: number, head: RefHead): Float64Array {
  if (head.kind === 'linear') return linearRef(features, batch, head.weight, head.bias, head.dim, head.classes);
  const f = l2NormalizeRef(features, batch, head.dim, head.logitScale);
  const w = l2NormalizeRef(head.weight, head.classes, head.dim, 1);
  return linearRef(f, batch, w, null, head.dim, head.classes);
}

/** Canonical-name lookup (what vitFeaturesRef asks for) into a float64 model keyed by its checkpoint names. */
export function refVisionWeights(config: VisionConfig, model: RefModel, fileName: string): RefWeights {
  const { names } = resolveVisionWeights(config, [...model].map(([name, t]) => ({ name, shape: t.shape })), fileName);
  return (canonical) => {
    const t = model.get(names.get(canonical) ?? '');
    if (!t) throw new Error(`${fileName}: no tensor for ${canonical}`);
    return t.data;
  };
}

/** Logits (B, K) of `batch` normalised images and each image's predicted class (argmax, the first on ties). */
export function vitPredictRef(config: VisionConfig, weights: RefWeights, images: ArrayLike<number>, batch: number, head: RefHead): { logits: Float64Array; predictions: Int32Array } {
  const logits = vitLogitsRef(vitFeaturesRef(config, weights, images, batch), batch, head);
  return { logits, predictions: argmaxRows(logits, batch, head.classes) };
}
