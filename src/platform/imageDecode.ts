/**
 * Image decoding in the browser (and workers): the browser's own codecs through createImageBitmap, read back as
 * RGBA from an OffscreenCanvas. Color-space conversion and alpha premultiplication are turned off so the pixels
 * are the file's, as Pillow reads them.
 */
import { FormatError } from '../engine/errors';
import type { DecodedImage } from '../engine/eval/clipPreprocess';

export async function decodeImageBrowser(bytes: Uint8Array, name: string): Promise<DecodedImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new FormatError(name, `cannot be decoded as an image (${(e as Error).message})`);
  }
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const g = canvas.getContext('2d', { willReadFrequently: true });
    if (!g) throw new FormatError(name, 'cannot be decoded: no 2D canvas in this browser');
    g.drawImage(bitmap, 0, 0);
    const { data } = g.getImageData(0, 0, bitmap.width, bitmap.height);
    return { width: bitmap.width, height: bitmap.height, channels: 4, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } finally {
    bitmap.close();
  }
}
