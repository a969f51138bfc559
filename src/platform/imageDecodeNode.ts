/**
 * Image decoding in Node, where there is no image codec: a PNG decoder on node:zlib (every color type, bit depths
 * 1-16, all five row filters; interlaced files are refused), and JPEG through jpeg-js (pure JavaScript, baseline and
 * progressive; it may differ from libjpeg by one level on some pixels). Hub datasets store MNIST, SVHN and most
 * small-image tasks as PNG and photo tasks (SUN397, Cars, RESISC45, DTD) as JPEG.
 */
import { inflateSync } from 'node:zlib';
import { decode as decodeJpegData } from 'jpeg-js';
import { FormatError } from '../engine/errors';
import type { DecodedImage } from '../engine/eval/clipPreprocess';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes a PNG to 8-bit samples: gray, gray + alpha, RGB or RGBA as stored (palettes expanded to RGB). */
export function decodePng(bytes: Uint8Array, name: string): DecodedImage {
  if (!SIGNATURE.every((b, i) => bytes[i] === b)) throw new FormatError(name, 'is not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = -1;
  let palette: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (body.length !== length) throw new FormatError(name, `chunk ${type} is cut short`);
    if (type === 'IHDR') {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      depth = body[8]!;
      colorType = body[9]!;
      if (body[12] !== 0) throw new FormatError(name, 'is an interlaced PNG, which is not supported');
    } else if (type === 'PLTE') palette = body;
    else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    at += 12 + length;
  }
  const samplesPer = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  if (!samplesPer || ![1, 2, 4, 8, 16].includes(depth) || width < 1 || height < 1) {
    throw new FormatError(name, `has an unsupported PNG header (color type ${colorType}, bit depth ${depth}, ${width} x ${height})`);
  }
  if (colorType === 3 && !palette) throw new FormatError(name, 'is a palette PNG without a PLTE chunk');
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new FormatError(name, `has corrupt image data (${(e as Error).message})`);
  }
  const stride = Math.ceil((width * samplesPer * depth) / 8);
  const bpp = Math.max(1, (samplesPer * depth) / 8);
  if (raw.length < height * (stride + 1)) throw new FormatError(name, `image data has ${raw.length} bytes, ${height * (stride + 1)} expected`);
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = rows.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[i - bpp]! : 0;
      const b = prev ? prev[i]! : 0;
      const c = prev && i >= bpp ? prev[i - bpp]! : 0;
      const x = src[i]!;
      if (filter === 0) out[i] = x;
      else if (filter === 1) out[i] = x + a;
      else if (filter === 2) out[i] = x + b;
      else if (filter === 3) out[i] = x + ((a + b) >> 1);
      else if (filter === 4) out[i] = x + paeth(a, b, c);
      else throw new FormatError(name, `row ${y} has unknown filter type ${filter}`);
    }
  }
  // Samples to 8 bits: 16-bit keeps the high byte, 1/2/4-bit gray is scaled to 0..255, palette indices are looked up.
  const n = width * height;
  const sample = (y: number, i: number): number => {
    const row = rows.subarray(y * stride);
    if (depth === 8) return row[i]!;
    if (depth === 16) return row[i * 2]!;
    const bit = i * depth;
    return (row[bit >> 3]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  const channels = colorType === 3 ? 3 : samplesPer;
  const data = new Uint8Array(n * channels);
  const maxLow = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (colorType === 3) {
        const index = sample(y, x);
        if (index * 3 + 2 >= palette!.length) throw new FormatError(name, `pixel ${x},${y} uses palette entry ${index}, the palette has ${palette!.length / 3}`);
        data.set(palette!.subarray(index * 3, index * 3 + 3), p * 3);
      } else {
        for (let s = 0; s < samplesPer; s++) {
          const v = sample(y, x * samplesPer + s);
          data[p * samplesPer + s] = depth < 8 ? Math.round((v * 255) / maxLow) : v;
        }
      }
    }
  }
  return { width, height, channels: channels as DecodedImage['channels'], data };
}

/** The Node image decoder for Hub suites. */
export async function decodeImageNode(bytes: Uint8Array, name: string): Promise<DecodedImage> {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return decodeJpeg(bytes, name);
  return decodePng(bytes, name);
}

/** Decodes a JPEG to 8-bit gray or RGB samples; bounded so a hostile file cannot claim gigapixels. */
export function decodeJpeg(bytes: Uint8Array, name: string): DecodedImage {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = decodeJpegData(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 100, maxMemoryUsageInMB: 1024 });
  } catch (e) {
    throw new FormatError(name, `is not a readable JPEG image (${(e as Error).message})`);
  }
  const pixels = img.width * img.height;
  const channels = pixels ? img.data.length / pixels : 0;
  if (channels !== 1 && channels !== 3) throw new FormatError(name, `JPEG decoded to ${img.data.length} samples for ${img.width}x${img.height} pixels`);
  return { width: img.width, height: img.height, channels, data: img.data };
}
