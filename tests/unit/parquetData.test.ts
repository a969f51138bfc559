/**
 * Parquet test splits (src/engine/eval/parquetData.ts) on files written by tests/fixtures/parquet/writeParquet.ts in
 * the Hugging Face datasets layout: labels over several shards and row groups, boolean labels, other column names,
 * image bytes by global row index, range reads limited to the row groups that hold requested rows, and errors naming
 * the file, row and column.
 */
import { parquetMetadata } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/engine/errors';
import { memorySource, type ByteSource } from '../../src/engine/io/byteSource';
import { openParquetSplit } from '../../src/engine/eval/parquetData';
import { stratifiedSample } from '../../src/engine/eval/sample';
import { writeImageParquet } from '../fixtures/parquet/writeParquet';

/** Row i: image bytes [i, i * 7 % 256, 42] (a distinct payload per row), label i % 3. */
const rowsOf = (from: number, n: number) => Array.from({ length: n }, (_, k) => ({ image: Uint8Array.of(from + k, ((from + k) * 7) % 256, 42), label: (from + k) % 3 }));

/** A ByteSource that records every range read. */
function recording(name: string, bytes: Uint8Array): ByteSource & { reads: [number, number][] } {
  const inner = memorySource(name, bytes);
  const reads: [number, number][] = [];
  return { name, size: inner.size, reads, read: (offset, length, signal) => (reads.push([offset, length]), inner.read(offset, length, signal)) };
}

describe('openParquetSplit', () => {
  const shardA = writeImageParquet(rowsOf(0, 7), 3);
  const shardB = writeImageParquet(rowsOf(7, 4), 2);

  it('reads every label across shards and row groups, and images by global row', async () => {
    const split = await openParquetSplit([memorySource('a.parquet', shardA), memorySource('b.parquet', shardB)], { image: 'image', label: 'label' }, 3);
    expect(split.count).toBe(11);
    expect([...split.labels]).toEqual(Array.from({ length: 11 }, (_, i) => i % 3));
    const images = await split.readImages([9, 0, 5, 10, 0]);
    expect(images.map((b) => [...b])).toEqual([9, 0, 5, 10, 0].map((i) => [i, (i * 7) % 256, 42]));
  });

  it('fetches only the row groups of the requested images', async () => {
    const src = recording('a.parquet', shardA);
    const split = await openParquetSplit([src], { image: 'image', label: 'label' }, 3);
    const secondGroup = Number(parquetMetadata(shardA.slice().buffer).row_groups[1]!.columns[0]!.meta_data!.data_page_offset);
    src.reads.length = 0;
    await split.readImages([1, 2]);
    expect(src.reads.length).toBeGreaterThan(0);
    for (const [offset, length] of src.reads) expect(offset + length).toBeLessThanOrEqual(secondGroup);
  });

  it('gives the stratified sampler labels it can use', async () => {
    const split = await openParquetSplit([memorySource('a.parquet', shardA), memorySource('b.parquet', shardB)], { image: 'image', label: 'label' }, 3);
    const picked = stratifiedSample(split.labels, 3, 6, 1);
    expect(picked.length).toBe(6);
    expect([0, 1, 2].map((c) => [...picked].filter((i) => split.labels[i] === c).length)).toEqual([2, 2, 2]);
  });

  it('reads boolean labels as classes 0 and 1 (PatchCamelyon stores its label as a bool)', async () => {
    const rows = [0, 1, 1, 0, 1].map((label, i) => ({ image: Uint8Array.of(i, 9), label }));
    const bytes = writeImageParquet(rows, 2, { image: 'image', label: 'label' }, 'boolean');
    const schema = parquetMetadata(bytes.slice().buffer).schema.find((e) => e.name === 'label');
    expect(schema?.type).toBe('BOOLEAN');
    const split = await openParquetSplit([memorySource('test-0.parquet', bytes)], { image: 'image', label: 'label' }, 2);
    expect([...split.labels]).toEqual([0, 1, 1, 0, 1]);
    expect((await split.readImages([4, 0])).map((b) => [...b])).toEqual([[4, 9], [0, 9]]);
    // A bool is a class index only for two-class tasks.
    await expect(openParquetSplit([memorySource('test-0.parquet', bytes)], { image: 'image', label: 'label' }, 1)).rejects.toThrow(
      'test-0.parquet: row 1: column "label" has label true, not a class index in 0..0',
    );
  });

  it('reads a WebDataset conversion by its column names (jpg, cls), beside other columns', async () => {
    const bytes = writeImageParquet(rowsOf(0, 5), 2, { image: 'jpg', label: 'cls' });
    const split = await openParquetSplit([memorySource('default/test/0000.parquet', bytes)], { image: 'jpg', label: 'cls' }, 3);
    expect([...split.labels]).toEqual([0, 1, 2, 0, 1]);
    expect((await split.readImages([3])).map((b) => [...b])).toEqual([[3, 21, 42]]);
    await expect(openParquetSplit([memorySource('default/test/0000.parquet', bytes)], { image: 'image', label: 'label' }, 3)).rejects.toThrow(
      'default/test/0000.parquet: has no column "image" (columns: jpg, cls)',
    );
  });

  it('names the file, row and column of bad data', async () => {
    const open = (bytes: Uint8Array, classes = 3, columns = { image: 'image', label: 'label' }) => openParquetSplit([memorySource('test-0.parquet', bytes)], columns, classes);
    await expect(open(shardA, 2)).rejects.toThrow('test-0.parquet: row 2: column "label" has label 2, not a class index in 0..1');
    await expect(open(shardA, 3, { image: 'img', label: 'label' })).rejects.toThrow('test-0.parquet: has no column "img" (columns: image, label)');
    await expect(open(new TextEncoder().encode('not a parquet file at all'))).rejects.toThrow(FormatError);
    await expect(openParquetSplit([], { image: 'image', label: 'label' }, 3)).rejects.toThrow('parquet split: has no files');
    const split = await open(shardA);
    await expect(split.readImages([7])).rejects.toThrow('image 7 is outside the split (7 rows)');
  });
});
