/**
 * Fuzzing the evaluation-data inputs of Hub suites (seeded, bounded): parquet shards and the encoded images in them.
 * Valid files, random byte edits and truncations of them, and plain noise either read back (labels in range, every image
 * present) or fail with a FormatError naming the file; nothing else, and nothing slow.
 */
import fc from 'fast-check';
import { encode as encodeJpeg } from 'jpeg-js';
import { describe } from 'vitest';
import { memorySource } from '../../src/engine/io/byteSource';
import { openParquetSplit } from '../../src/engine/eval/parquetData';
import { decodeImageNode } from '../../src/platform/imageDecodeNode';
import { encodePng } from '../fixtures/parquet/encodePng';
import { writeImageParquet } from '../fixtures/parquet/writeParquet';
import { formatErrorNaming, fuzzCase, mutatedBytes } from '../helpers/fuzz';

interface FuzzFile {
  name: string;
  bytes: Uint8Array;
}

const CLASSES = 4;

/** A small valid shard: a few rows of tiny gray PNGs in one or more row groups. */
const validParquet = fc.record({ rows: fc.integer({ min: 1, max: 6 }), group: fc.integer({ min: 1, max: 4 }), seed: fc.integer({ min: 0, max: 255 }) }).map(({ rows, group, seed }): FuzzFile => {
  const data = Array.from({ length: rows }, (_, i) => ({ image: encodePng(Uint8Array.from({ length: 16 }, (_, j) => (seed + 7 * i + j) & 255), 4, 4, 1), label: (seed + i) % CLASSES }));
  return { name: 'test-00000-of-00001.parquet', bytes: writeImageParquet(data, group) };
});

const noise = (name: string) => fc.uint8Array({ maxLength: 200 }).map((bytes): FuzzFile => ({ name, bytes }));

async function readAll(f: FuzzFile) {
  const split = await openParquetSplit([memorySource(f.name, f.bytes)], { image: 'image', label: 'label' }, CLASSES);
  const images = await split.readImages(Array.from({ length: split.count }, (_, i) => i));
  return { split, images };
}

/** A valid image: PNG (gray or RGB) or JPEG, a few pixels. */
const validImage = fc.record({ kind: fc.constantFrom('png-gray', 'png-rgb', 'jpeg'), w: fc.integer({ min: 1, max: 12 }), h: fc.integer({ min: 1, max: 12 }), seed: fc.integer({ min: 0, max: 255 }) }).map(({ kind, w, h, seed }): FuzzFile => {
  const channels = kind === 'png-gray' ? 1 : 3;
  const pixels = Uint8Array.from({ length: w * h * channels }, (_, i) => (seed * 31 + i * 17) & 255);
  if (kind !== 'jpeg') return { name: `image.${kind}.png`, bytes: encodePng(pixels, w, h, channels) };
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) rgba.set([pixels[3 * i]!, pixels[3 * i + 1]!, pixels[3 * i + 2]!, 255], 4 * i);
  return { name: 'image.jpg', bytes: new Uint8Array(encodeJpeg({ width: w, height: h, data: rgba }, 80).data) };
});

describe('fuzz: parquet shards and images', () => {
  fuzzCase({
    category: 'fuzz-inputs',
    name: 'parquet shards with random byte edits and truncations',
    input: fc.oneof(validParquet, mutatedBytes(validParquet), mutatedBytes(validParquet), noise('noise.parquet')),
    parse: readAll,
    rejects: formatErrorNaming<FuzzFile>((f) => f.name),
    accepted: ({ split, images }) => {
      if (split.labels.some((l) => l < 0 || l >= CLASSES)) throw new Error('accepted a label outside the classes');
      if (images.length !== split.count || images.some((b) => !(b instanceof Uint8Array) || b.byteLength === 0)) throw new Error('accepted a row without image bytes');
    },
    numRuns: 400,
    minShare: 0.05,
  });

  fuzzCase({
    category: 'fuzz-inputs',
    name: 'PNG and JPEG images with random byte edits and truncations',
    input: fc.oneof(validImage, mutatedBytes(validImage), mutatedBytes(validImage), noise('noise.png')),
    parse: (f) => decodeImageNode(f.bytes, f.name),
    rejects: formatErrorNaming<FuzzFile>((f) => f.name),
    accepted: (img) => {
      if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * img.channels) throw new Error(`decoded ${img.data.length} samples for ${img.width}x${img.height}x${img.channels}`);
    },
    numRuns: 600,
    minShare: 0.05,
  });
});
