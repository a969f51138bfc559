/**
 * A test split stored as Hugging Face parquet shards (an image column: the datasets Image feature, a struct with the
 * encoded `bytes`, or bare binary; a label column: the class index, an integer or a bool as in PatchCamelyon; the
 * column names are the caller's), read with hyparquet through ByteSources: the footer first, then only
 * the label column of every row group, and image bytes only for the row groups that hold requested rows (range
 * reads; nothing else of the file is fetched). Rows are numbered across shards in shard order.
 */
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { FormatError } from '../errors';
import type { ByteSource } from '../io/byteSource';

/** hyparquet's file interface over a ByteSource (each slice is one range read). */
export function asyncBufferOf(src: ByteSource, signal?: AbortSignal): AsyncBuffer {
  return {
    byteLength: src.size,
    async slice(start: number, end = src.size): Promise<ArrayBuffer> {
      const bytes = await src.read(start, end - start, signal);
      return bytes.slice().buffer;
    },
  };
}

interface Shard {
  source: ByteSource;
  file: AsyncBuffer;
  metadata: FileMetaData;
  /** First global row of each row group, plus the shard's end. */
  groupStarts: number[];
}

/** Most rows one shard may declare: test splits have tens of thousands; a hostile footer must not size arrays. */
const MAX_ROWS = 10_000_000;

/**
 * Refuses footers whose row groups list a column twice or a column the schema lacks: the reader would start reading
 * such chunks and never collect their errors (an unhandled rejection, fatal in Node), so they are caught first.
 */
function checkColumnChunks(file: string, metadata: FileMetaData): void {
  let schema: ReturnType<typeof parquetSchema>;
  try {
    schema = parquetSchema(metadata);
  } catch (e) {
    throw new FormatError(file, `has an unreadable schema (${(e as Error).message})`);
  }
  const names = schema.children.map((c) => c.element.name);
  if (new Set(names).size !== names.length) throw new FormatError(file, `has repeated top-level columns (${names.join(', ')})`);
  const leaves = new Set<string>();
  const walk = (node: typeof schema, path: string[]) => {
    if (!node.children.length) leaves.add(path.join('.'));
    for (const c of node.children) walk(c, [...path, c.element.name]);
  };
  walk(schema, []);
  metadata.row_groups.forEach((g, i) => {
    const seen = new Set<string>();
    for (const c of g.columns) {
      const path = c.meta_data?.path_in_schema?.join('.') ?? '';
      if (!leaves.has(path) || seen.has(path)) throw new FormatError(file, `row group ${i} lists column chunk "${path}" ${seen.has(path) ? 'twice' : 'that the schema does not have'}`);
      seen.add(path);
    }
  });
}

/** Runs a parquet read; a corrupt file's failure (whatever the reader throws) becomes a FormatError naming the file. */
async function readOrExplain<T>(file: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof FormatError || (e as Error)?.name === 'AbortError') throw e;
    throw new FormatError(file, `has unreadable column data (${(e as Error)?.message ?? String(e)})`);
  }
}

export interface ParquetSplit {
  /** Total rows over all shards. */
  count: number;
  /** Class index of every row. */
  labels: Int32Array;
  /** Encoded image bytes (PNG, JPEG, ...) of rows `indices`, in that order. */
  readImages(indices: ArrayLike<number>, signal?: AbortSignal): Promise<Uint8Array[]>;
}

/** The encoded bytes of an image cell: the datasets Image struct {bytes, path} or a bare binary value. */
function imageBytes(value: unknown, file: string, row: number, column: string): Uint8Array {
  const bytes = value instanceof Uint8Array ? value : (value as { bytes?: unknown } | null)?.bytes;
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) {
    throw new FormatError(file, `row ${row}: column "${column}" holds no encoded image bytes (expected the datasets Image struct {bytes, path} or binary)`);
  }
  return bytes;
}

function labelOf(value: unknown, file: string, row: number, column: string, classes: number): number {
  const n = typeof value === 'bigint' ? Number(value) : typeof value === 'boolean' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= classes) {
    throw new FormatError(file, `row ${row}: column "${column}" has label ${String(value)}, not a class index in 0..${classes - 1}`);
  }
  return n;
}

/**
 * Opens the shards of a split and reads every label (checked against `classes`). `columns` names the image and
 * label columns; a shard without them is a FormatError naming the shard and listing its columns.
 */
export async function openParquetSplit(
  sources: readonly ByteSource[],
  columns: { image: string; label: string },
  classes: number,
  signal?: AbortSignal,
): Promise<ParquetSplit> {
  if (sources.length === 0) throw new FormatError('parquet split', 'has no files');
  const shards: Shard[] = [];
  const labels: number[] = [];
  let row = 0;
  for (const source of sources) {
    const file = asyncBufferOf(source, signal);
    let metadata: FileMetaData;
    try {
      metadata = await parquetMetadataAsync(file);
    } catch (e) {
      throw new FormatError(source.name, `is not a readable parquet file (${(e as Error).message})`);
    }
    checkColumnChunks(source.name, metadata);
    const top = new Set(parquetSchema(metadata).children.map((c) => c.element.name));
    for (const c of [columns.image, columns.label]) {
      if (!top.has(c)) throw new FormatError(source.name, `has no column "${c}" (columns: ${[...top].join(', ')})`);
    }
    const groupStarts = [row];
    for (const g of metadata.row_groups) groupStarts.push(groupStarts[groupStarts.length - 1]! + Number(g.num_rows));
    if (Number(metadata.num_rows) > MAX_ROWS || metadata.row_groups.length > MAX_ROWS) throw new FormatError(source.name, `declares ${metadata.num_rows} rows in ${metadata.row_groups.length} row groups (at most ${MAX_ROWS})`);
    const rows = await readOrExplain(source.name, () => parquetReadObjects({ file, metadata, columns: [columns.label] }));
    rows.forEach((r, i) => labels.push(labelOf(r[columns.label], source.name, i, columns.label, classes)));
    if (rows.length !== Number(metadata.num_rows)) throw new FormatError(source.name, `footer says ${metadata.num_rows} rows, the label column has ${rows.length}`);
    row += rows.length;
    shards.push({ source, file, metadata, groupStarts });
  }

  async function readImages(indices: ArrayLike<number>, readSignal?: AbortSignal): Promise<Uint8Array[]> {
    // Requested rows grouped by (shard, row group), so each row group's image chunk is fetched once.
    const groups = new Map<string, { shard: Shard; group: number; rows: number[] }>();
    for (let i = 0; i < indices.length; i++) {
      const r = indices[i]!;
      if (!Number.isInteger(r) || r < 0 || r >= row) throw new RangeError(`image ${r} is outside the split (${row} rows)`);
      const shard = shards.findLast((s) => s.groupStarts[0]! <= r)!;
      const group = shard.groupStarts.findLastIndex((start) => start <= r);
      const key = `${shards.indexOf(shard)}:${group}`;
      if (!groups.has(key)) groups.set(key, { shard, group, rows: [] });
      groups.get(key)!.rows.push(r);
    }
    const byRow = new Map<number, Uint8Array>();
    for (const { shard, group, rows } of groups.values()) {
      readSignal?.throwIfAborted();
      const first = shard.groupStarts[group]!;
      const base = shard.groupStarts[0]!;
      const objects = await readOrExplain(shard.source.name, () =>
        parquetReadObjects({
          file: shard.file,
          metadata: shard.metadata,
          columns: [columns.image],
          rowStart: first - base,
          rowEnd: shard.groupStarts[group + 1]! - base,
          utf8: false,
        }),
      );
      for (const r of rows) byRow.set(r, imageBytes(objects[r - first]?.[columns.image], shard.source.name, r - base, columns.image));
    }
    return Array.from(indices, (r) => byRow.get(r)!);
  }

  return { count: row, labels: Int32Array.from(labels), readImages };
}
