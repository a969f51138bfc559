/**
 * CLIP image preprocessing (src/engine/eval/clipPreprocess.ts) against Pillow, from the golden file written by
 * tests/fixtures/clipImage/generate.py: the resized and center-cropped u8 pixels must equal Pillow's exactly
 * (upsampling, antialiased downsampling, gray and RGBA input, the real 224 size), and the normalised model input
 * must match numpy's float32 arithmetic to 1e-6. Also the Node PNG decoder (src/platform/imageDecodeNode.ts) against
 * Pillow on PNGs of every color type Pillow writes (RGB, gray, RGBA, palette, 1-bit, 16-bit gray).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIP_PREPROCESS, clipPreprocess, resizedSize, toRgb, type ClipPreprocessConfig, type DecodedImage } from '../../src/engine/eval/clipPreprocess';
import { memorySource } from '../../src/engine/io/byteSource';
import { openSafetensors, type SafetensorsFile } from '../../src/engine/io/safetensorsReader';
import { encode as encodeJpeg } from 'jpeg-js';
import { decodeImageNode, decodePng } from '../../src/platform/imageDecodeNode';

const PATH = join(process.cwd(), 'tests', 'fixtures', 'clipImage', 'golden.safetensors');
let file: SafetensorsFile;
beforeAll(async () => {
  file = await openSafetensors(memorySource('golden.safetensors', new Uint8Array(readFileSync(PATH))));
});

async function load(name: string): Promise<{ image: DecodedImage; crop: Uint8Array; config: ClipPreprocessConfig }> {
  const info = file.tensor(`${name}/input`)!;
  const [height, width, channels] = info.shape as [number, number, number];
  const meta = JSON.parse(file.header.metadata![`${name}.config`]!) as { shortest_edge: number; crop_size: number };
  return {
    image: { width, height, channels: channels as DecodedImage['channels'], data: await file.readTensor(`${name}/input`) },
    crop: await file.readTensor(`${name}/crop`),
    config: { ...CLIP_PREPROCESS, shortestEdge: meta.shortest_edge, cropSize: meta.crop_size },
  };
}

/** The u8 pixels behind a normalised [3, crop, crop] output, as interleaved RGB. */
function u8Of(pixels: Float32Array, config: ClipPreprocessConfig): Uint8Array {
  const n = config.cropSize ** 2;
  const out = new Uint8Array(n * 3);
  for (let ch = 0; ch < 3; ch++) for (let i = 0; i < n; i++) out[i * 3 + ch] = Math.round((pixels[ch * n + i]! * config.std[ch]! + config.mean[ch]!) * 255);
  return out;
}

describe('clipPreprocess vs Pillow', () => {
  it('golden file says which Pillow made it and how to regenerate it', () => {
    expect(file.header.metadata!.regenerate).toBe('/usr/bin/python3 tests/fixtures/clipImage/generate.py');
    expect(file.header.metadata!.cases).toBe('up,down,rgba,mnist');
  });

  it.each(['up', 'down', 'rgba'])('%s: resized and cropped pixels equal Pillow exactly', async (name) => {
    const { image, crop, config } = await load(name);
    expect([...u8Of(clipPreprocess(image, config), config)]).toEqual([...crop]);
  });

  it('mnist: a 28 x 28 gray digit at the real 224 size, all three channels equal to Pillow', async () => {
    const { image, crop, config } = await load('mnist');
    expect(config.shortestEdge).toBe(224);
    const rgb = u8Of(clipPreprocess(image, config), config);
    for (let ch = 0; ch < 3; ch++) expect(Array.from({ length: crop.length }, (_, i) => rgb[i * 3 + ch])).toEqual([...crop]);
  });

  it('up: normalised model input within 1e-6 of numpy float32', async () => {
    const { image, config } = await load('up');
    const info = file.tensor('up/pixels')!;
    const bytes = await file.readTensor('up/pixels');
    const expected = new Float32Array(bytes.slice().buffer);
    expect(info.shape).toEqual([3, 32, 32]);
    const got = clipPreprocess(image, config);
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(got[i]! - expected[i]!));
    expect(worst).toBeLessThan(1e-6);
  });
});

describe('helpers', () => {
  it("resizes the shortest side and truncates the other, as transformers' get_resize_output_image_size", () => {
    expect(resizedSize(19, 13, 32)).toEqual({ width: 46, height: 32 });
    expect(resizedSize(640, 480, 224)).toEqual({ width: 298, height: 224 });
    expect(resizedSize(480, 640, 224)).toEqual({ width: 224, height: 298 });
    expect(resizedSize(28, 28, 224)).toEqual({ width: 224, height: 224 });
  });

  it('converts gray, gray+alpha and RGBA to RGB as convert("RGB"), and rejects short data', () => {
    expect([...toRgb({ width: 2, height: 1, channels: 1, data: Uint8Array.of(5, 9) })]).toEqual([5, 5, 5, 9, 9, 9]);
    expect([...toRgb({ width: 1, height: 1, channels: 2, data: Uint8Array.of(7, 0) })]).toEqual([7, 7, 7]);
    expect([...toRgb({ width: 1, height: 1, channels: 4, data: Uint8Array.of(1, 2, 3, 4) })]).toEqual([1, 2, 3]);
    expect(() => toRgb({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) })).toThrow('image of 2 x 2 x 3 has only 5 bytes');
  });

  it('writes into a batch buffer at an offset', () => {
    const config = { ...CLIP_PREPROCESS, shortestEdge: 4, cropSize: 4 };
    const out = new Float32Array(2 * 48);
    const image: DecodedImage = { width: 4, height: 4, channels: 3, data: new Uint8Array(48).fill(255) };
    clipPreprocess(image, config, out, 48);
    expect(out[0]).toBe(0);
    expect(out[48]).toBeCloseTo((1 - CLIP_PREPROCESS.mean[0]) / CLIP_PREPROCESS.std[0], 5);
  });
});

describe('JPEG decoding in Node', () => {
  it('decodes an RGB photo-like JPEG to within JPEG error of the pixels it encoded', async () => {
    const width = 48;
    const height = 32;
    const rgba = new Uint8Array(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const o = 4 * (y * width + x);
        rgba.set([(x * 255) / (width - 1), (y * 255) / (height - 1), 128 + 100 * Math.sin((x + y) / 6), 255], o);
      }
    }
    const jpeg = encodeJpeg({ width, height, data: rgba }, 95).data;
    const img = await decodeImageNode(new Uint8Array(jpeg), 'photo.jpg');
    expect([img.width, img.height, img.channels]).toEqual([width, height, 3]);
    let err = 0;
    for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) err += Math.abs(img.data[3 * i + c]! - rgba[4 * i + c]!);
    // Quality 95 with 4:2:0 chroma: a smooth image comes back within a few levels on average.
    expect(err / (width * height * 3)).toBeLessThan(3);
  });
});

describe('PNG decoding in Node vs Pillow', () => {
  it('decodes every PNG kind to the same RGB pixels', async () => {
    const kinds = file.header.metadata!.pngs!.split(',');
    expect(kinds).toEqual(['rgb', 'gray', 'rgba', 'palette', 'bits', 'gray16']);
    for (const kind of kinds) {
      const png = await file.readTensor(`png_${kind}/file`);
      const [height, width] = file.tensor(`png_${kind}/rgb`)!.shape as [number, number];
      const decoded = decodePng(png, `${kind}.png`);
      expect([decoded.width, decoded.height], kind).toEqual([width, height]);
      expect([...toRgb(decoded)], kind).toEqual([...(await file.readTensor(`png_${kind}/rgb`))]);
    }
  });

  it('refuses what it cannot decode, naming the file', async () => {
    await expect(decodeImageNode(Uint8Array.of(0xff, 0xd8, 0xff, 0xe0), 'sun397 image 3')).rejects.toThrow('sun397 image 3: is not a readable JPEG image');
    expect(() => decodePng(new TextEncoder().encode('GIF89a'), 'x.gif')).toThrow('x.gif: is not a PNG file');
    const png = await file.readTensor('png_rgb/file');
    expect(() => decodePng(png.subarray(0, 60), 'cut.png')).toThrow(/cut.png: chunk IDAT is cut short|cut.png: has corrupt image data|cut.png: image data has/);
  });
});
