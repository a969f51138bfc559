/**
 * Reads into a caller's buffer (the optional destination of ByteSource.read and Model.readTensor, through
 * readTensorInto), which a merge uses to put model bytes straight into the GPU's mapped staging buffers: every source
 * writes exactly the bytes a plain read returns, only inside the given view (Node files and Blob windows fill it
 * themselves), and refuses out-of-range reads, wrong-size buffers and files that shrank, naming the file and tensor.
 * Wrappers that override read / readTensor without passing the destination on still see every read (their bytes
 * are copied).
 */
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memorySource, type ByteSource } from '../../src/engine/io/byteSource';
import { openSingleFileModel, readTensorInto, type Model } from '../../src/engine/io/model';
import { blockReader } from '../../src/platform/hubBlocks';
import { progressTracker } from '../../src/platform/hubProgress';
import { BLOB_WINDOWS, blobSource } from '../../src/platform/sources';
import { fileSource } from '../../src/platform/nodeFiles';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

/** What a caller of read with a destination does (as readTensorInto): use the result, copying it when it is not `into`. */
async function readInto(src: ByteSource, offset: number, into: Uint8Array): Promise<void> {
  const got = await src.read(offset, into.byteLength, undefined, into);
  if (got !== into) into.set(got);
}

const payload = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31 + 7) & 255);

/** readInto at each (offset, length) equals read, inside a larger buffer whose other bytes stay as they were. */
async function expectSameAsRead(src: ByteSource, ranges: [number, number][]): Promise<void> {
  for (const [offset, length] of ranges) {
    const big = new Uint8Array(length + 64).fill(0xee);
    await readInto(src, offset, big.subarray(32, 32 + length));
    expect(Buffer.from(big.subarray(32, 32 + length)).equals(Buffer.from(await src.read(offset, length))), `${src.name} ${offset}+${length}`).toBe(true);
    expect(big.subarray(0, 32).every((b) => b === 0xee) && big.subarray(32 + length).every((b) => b === 0xee), `${src.name}: outside the view`).toBe(true);
  }
}

const RANGES: [number, number][] = [
  [0, 0],
  [0, 1],
  [5, 1000],
  [100, BLOB_WINDOWS.smallRead],
  [70_000, BLOB_WINDOWS.smallRead + 1],
  [1, 299_999],
];

describe('readInto', () => {
  it('memory, Blob and Node file sources write what read returns, only inside the view', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mp-readinto-'));
    try {
      const path = join(dir, 'data.bin');
      await writeFile(path, payload);
      const sources = [memorySource('memory', payload), blobSource(new Blob([payload]), 'blob'), await fileSource(path)];
      for (const src of sources) {
        await expectSameAsRead(src, RANGES);
        await expect(readInto(src, 299_999, new Uint8Array(2))).rejects.toThrow(/outside the file/);
      }
      // Node files fill the destination themselves (no copy of their own).
      const into = new Uint8Array(10);
      expect(await sources[2]!.read(3, 10, undefined, into)).toBe(into);
      // A wrapper that overrides read and drops the destination sees every read, and its bytes are copied.
      let seen = 0;
      const wrapped: ByteSource = { ...sources[2]!, read: (o, n, s) => ((seen += n), sources[2]!.read(o, n, s)) };
      await expectSameAsRead(wrapped, RANGES);
      expect(seen).toBe(2 * RANGES.reduce((a, [, n]) => a + n, 0));
      // The file shrank after it was opened: the error names it.
      const file = await fileSource(path);
      await truncate(path, 1000);
      await expect(readInto(file, 500, new Uint8Array(1000))).rejects.toThrow(/data\.bin: file ended at 1000/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tensors: a file model, the Hub block reader and a wrapper that drops the destination give readTensor\'s bytes', async () => {
    const values = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i));
    const bytes = makeModelBytes([
      { name: 'w', dtype: 'F32', shape: [50, 100], data: new Uint8Array(values.buffer) },
      { name: 'b', dtype: 'BF16', shape: [7], data: new Uint8Array(14).fill(3) },
    ]);
    const model = await openSingleFileModel('m.safetensors', memorySource('m.safetensors', bytes));
    // Blocks of 1000 bytes: reads span several.
    const blocks = blockReader('m', model.tensors, () => progressTracker(bytes.byteLength, undefined), 1000);
    const hubLike: Model = { ...model, readTensor: blocks.read };
    const wrapper: Model = { ...model, readTensor: (name, range, signal) => model.readTensor(name, range, signal) };
    for (const m of [model, hubLike, wrapper]) {
      for (const [name, range] of [['w', { start: 123, count: 2000 }], ['w', undefined], ['b', { start: 2, count: 5 }]] as const) {
        const want = await model.readTensor(name, range);
        const into = new Uint8Array(want.byteLength);
        await readTensorInto(m, name, range, into);
        expect(Buffer.from(into).equals(Buffer.from(want)), `${name}`).toBe(true);
      }
      await expect(readTensorInto(m, 'w', { start: 0, count: 10 }, new Uint8Array(39))).rejects.toThrow(/"w": 40 bytes read into a buffer of 39/);
      await expect(readTensorInto(m, 'w', { start: 4999, count: 2 }, new Uint8Array(8))).rejects.toThrow(/outside its 5000 elements/);
      await expect(readTensorInto(m, 'nope', undefined, new Uint8Array(0))).rejects.toThrow(/no tensor named "nope"/);
    }
  });
});
