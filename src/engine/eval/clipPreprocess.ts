/**
 * CLIP's image preprocessing (transformers' CLIPImageProcessor with the OpenAI CLIP settings), in plain TS:
 * convert to RGB, resize so the shortest side is 224 with PIL's bicubic filter, center-crop 224 x 224, scale by
 * 1/255, normalise each channel with CLIP's mean and std; output f32 [3, 224, 224] (channel-major, as the model
 * takes it). The resize reproduces Pillow's 8-bit resampler exactly (ImagingResample: a separable convolution,
 * horizontal pass then vertical, antialiased when shrinking, 22-bit fixed-point weights, each pass rounded to u8),
 * because the processor hands uint8 images to Pillow and the small differences of a float resize move accuracy.
 */

/** A decoded image: `channels` interleaved u8 values per pixel (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA), row-major. */
export interface DecodedImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

export interface ClipPreprocessConfig {
  /** The shortest side after resizing. */
  shortestEdge: number;
  cropSize: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** openai/clip-vit-* preprocessor_config.json. */
export const CLIP_PREPROCESS: ClipPreprocessConfig = {
  shortestEdge: 224,
  cropSize: 224,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};

/** Pillow's PRECISION_BITS for 8-bit resampling: 32 - 8 - 2. */
const PRECISION_BITS = 22;

/** Pillow's bicubic kernel, a = -0.5, support 2. */
function bicubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output pixel, the first input pixel and integer weights. */
function coefficients(inSize: number, outSize: number): { first: Int32Array; count: Int32Array; weights: Int32Array; ksize: number } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    // C's (int) truncation of values that are >= 0 here, as Pillow computes them.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { first, count, weights, ksize };
}

/** Pillow's clip8: the fixed-point sum shifted down and clamped to u8. */
function clip8(sum: number): number {
  const v = Math.floor(sum / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes interleaved RGB u8 pixels as Pillow's Image.resize(BICUBIC) does: horizontal pass (when the width
 * changes), then vertical (when the height changes), each rounded to u8.
 */
export function resizeBicubicRgb(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  let src = rgb;
  let w = width;
  const rounding = 1 << (PRECISION_BITS - 1);
  if (outWidth !== width) {
    const c = coefficients(width, outWidth);
    const out = new Uint8Array(outWidth * height * 3);
    for (let y = 0; y < height; y++) {
      for (let xx = 0; xx < outWidth; xx++) {
        for (let ch = 0; ch < 3; ch++) {
          let sum = rounding;
          for (let x = 0; x < c.count[xx]!; x++) sum += src[(y * width + c.first[xx]! + x) * 3 + ch]! * c.weights[xx * c.ksize + x]!;
          out[(y * outWidth + xx) * 3 + ch] = clip8(sum);
        }
      }
    }
    src = out;
    w = outWidth;
  }
  if (outHeight !== height) {
    const c = coefficients(height, outHeight);
    const out = new Uint8Array(w * outHeight * 3);
    for (let yy = 0; yy < outHeight; yy++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < 3; ch++) {
          let sum = rounding;
          for (let y = 0; y < c.count[yy]!; y++) sum += src[((c.first[yy]! + y) * w + x) * 3 + ch]! * c.weights[yy * c.ksize + y]!;
          out[(yy * w + x) * 3 + ch] = clip8(sum);
        }
      }
    }
    src = out;
  }
  return src;
}

/** Interleaved RGB u8 of any decoded image, as PIL's convert("RGB") (gray replicated, alpha dropped). */
export function toRgb(image: DecodedImage): Uint8Array {
  const { width, height, channels, data } = image;
  const n = width * height;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new RangeError(`image size ${width} x ${height} is not a positive integer size`);
  if (data.length < n * channels) throw new RangeError(`image of ${width} x ${height} x ${channels} has only ${data.length} bytes`);
  if (channels === 3) return data.subarray(0, n * 3);
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (channels <= 2) rgb.fill(data[i * channels]!, i * 3, i * 3 + 3);
    else rgb.set(data.subarray(i * 4, i * 4 + 3), i * 3);
  }
  return rgb;
}

/** The size after "shortest side to `edge`" (transformers: the long side is edge * long / short, truncated). */
export function resizedSize(width: number, height: number, edge: number): { width: number; height: number } {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const other = Math.trunc((edge * long) / short);
  return width <= height ? { width: edge, height: other } : { width: other, height: edge };
}

/** The model input of one image: f32 [3, crop, crop], normalised. Writes into `out` at `offset` when given. */
export function clipPreprocess(image: DecodedImage, config: ClipPreprocessConfig = CLIP_PREPROCESS, out?: Float32Array, offset = 0): Float32Array {
  const size = resizedSize(image.width, image.height, config.shortestEdge);
  const rgb = resizeBicubicRgb(toRgb(image), image.width, image.height, size.width, size.height);
  const crop = config.cropSize;
  // transformers' center_crop: offsets (size - crop) // 2; an image smaller than the crop is zero-padded around.
  const top = Math.floor((size.height - crop) / 2);
  const left = Math.floor((size.width - crop) / 2);
  const target = out ?? new Float32Array(3 * crop * crop);
  if (target.length < offset + 3 * crop * crop) throw new RangeError(`output has ${target.length} values, needs ${offset + 3 * crop * crop}`);
  for (let ch = 0; ch < 3; ch++) {
    const mean = config.mean[ch]!;
    const std = config.std[ch]!;
    for (let y = 0; y < crop; y++) {
      const sy = y + top;
      for (let x = 0; x < crop; x++) {
        const sx = x + left;
        const inside = sy >= 0 && sy < size.height && sx >= 0 && sx < size.width;
        const v = inside ? rgb[(sy * size.width + sx) * 3 + ch]! / 255 : 0;
        target[offset + (ch * crop + y) * crop + x] = (v - mean) / std;
      }
    }
  }
  return target;
}
