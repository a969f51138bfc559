import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/engine/errors';
import { memorySource } from '../../src/engine/io/byteSource';
import { MAX_HEADER_BYTES, parseHeader, readHeaderLength } from '../../src/engine/io/safetensorsHeader';
import { openSafetensors } from '../../src/engine/io/safetensorsReader';

const FILE = 'weights.safetensors';

/** Parses a header given as JSON text (or a value to stringify), followed by `dataSize` bytes of data. */
function parse(json: unknown, dataSize = 64) {
  const text = typeof json === 'string' ? json : JSON.stringify(json);
  const bytes = new TextEncoder().encode(text);
  return parseHeader(FILE, 8 + bytes.byteLength + dataSize, bytes.byteLength, bytes);
}

/** Expects a FormatError naming the file whose message matches `pattern`. */
function expectFormatError(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(FormatError);
  expect((caught as FormatError).file).toBe(FILE);
  expect((caught as Error).message).toMatch(pattern);
}

/** 8 little-endian bytes holding `n` (as a u64). */
function u64(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

describe('readHeaderLength', () => {
  it('reads a little-endian u64', () => {
    expect(readHeaderLength(FILE, 1000, u64(258n))).toBe(258);
  });

  it('rejects a file shorter than 8 bytes as truncated', () => {
    expectFormatError(() => readHeaderLength(FILE, 5, new Uint8Array(5)), /truncated.*5 bytes/);
  });

  it('rejects a length beyond the end of the file, stating both numbers', () => {
    expectFormatError(() => readHeaderLength(FILE, 100, u64(1000n)), /1000.*beyond the end.*92 bytes/);
  });

  it('rejects a length above the cap, stating both numbers', () => {
    expectFormatError(() => readHeaderLength(FILE, 2e9, u64(BigInt(MAX_HEADER_BYTES + 1))), /100000001.*limit of 100000000/);
    expectFormatError(() => readHeaderLength(FILE, 2e9, u64(2n ** 63n)), /above the limit/);
  });

  it('rejects a zero length', () => {
    expectFormatError(() => readHeaderLength(FILE, 100, u64(0n)), /header length is 0/);
  });

  it('surfaces through openSafetensors on a truncated file', async () => {
    await expect(openSafetensors(memorySource(FILE, new Uint8Array(3)))).rejects.toThrow(FormatError);
    await expect(openSafetensors(memorySource(FILE, new Uint8Array(3)))).rejects.toThrow(/truncated/);
  });
});

describe('parseHeader: the JSON document', () => {
  it('parses a valid header: tensors sorted by offset, metadata, data area', () => {
    const h = parse(
      {
        b: entry('F32', [2, 2], [8, 24]),
        __metadata__: { format: 'pt' },
        a: entry('I64', [1], [0, 8]),
        empty: entry('F16', [0, 3], [24, 24]),
      },
      24,
    );
    expect(h.tensors.map((t) => t.name)).toEqual(['a', 'b', 'empty']);
    expect(h.tensors[1]).toEqual({ name: 'b', dtype: 'F32', shape: [2, 2], begin: 8, end: 24 });
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.dataOffset).toBe(8 + h.headerLength);
    expect(h.dataSize).toBe(24);
  });

  it('accepts trailing space padding, no metadata and an empty header', () => {
    const h = parse(`${JSON.stringify({ t: entry('U8', [4], [0, 4]) })}      `, 4);
    expect(h.metadata).toBeNull();
    expect(h.tensors).toHaveLength(1);
    expect(parse('{}', 0).tensors).toEqual([]);
  });

  it('rejects a header that is not UTF-8', () => {
    const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
    expectFormatError(() => parseHeader(FILE, 100, 4, bytes), /not valid UTF-8/);
  });

  it('rejects a header that is not JSON', () => {
    expectFormatError(() => parse('{"a": '), /not valid JSON/);
  });

  it.each([['[]'], ['42'], ['null'], ['"text"']])('rejects a header that is not an object: %s', (text) => {
    expectFormatError(() => parse(text), /must be a JSON object/);
  });

  it('turns JSON nesting bombs into a FormatError, never a crash', () => {
    const depth = 100_000;
    expectFormatError(() => parse('['.repeat(depth)), /not valid JSON/);
    expectFormatError(() => parse('['.repeat(depth) + ']'.repeat(depth)), /must be a JSON object/);
    expectFormatError(() => parse(`{"t": ${'['.repeat(depth)}${']'.repeat(depth)}}`), /tensor "t".*must be an object/);
    expectFormatError(() => parse(`{"t": {"dtype": "F32", "shape": ${'['.repeat(depth)}${']'.repeat(depth)}, "data_offsets": [0, 0]}}`), /shape\[0\]/);
  });
});

describe('parseHeader: tensor entries', () => {
  it('rejects an empty tensor name', () => {
    expectFormatError(() => parse({ '': entry('F32', [1], [0, 4]) }), /non-empty/);
  });

  it('rejects an entry that is not an object', () => {
    expectFormatError(() => parse({ t: 5 }), /tensor "t": entry must be an object/);
    expectFormatError(() => parse({ t: [1, 2] }), /tensor "t": entry must be an object/);
  });

  it('requires exactly dtype, shape and data_offsets', () => {
    expectFormatError(() => parse({ t: { ...entry('F32', [1], [0, 4]), extra: 1 } }), /tensor "t": unexpected field.*"extra"/);
    expectFormatError(() => parse({ t: { dtype: 'F32', shape: [1] } }), /tensor "t": missing field.*data_offsets/);
  });

  it('rejects an unknown dtype and lists the allowed ones', () => {
    expectFormatError(() => parse({ t: entry('F8_E4M3', [1], [0, 1]) }), /tensor "t": dtype "F8_E4M3".*allowed: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL/);
    expectFormatError(() => parse({ t: { dtype: 3, shape: [1], data_offsets: [0, 1] } }), /tensor "t": dtype number 3/);
  });

  it.each([
    ['not an array', 4, /shape must be an array/],
    ['negative', [-1], /shape\[0\].*not a non-negative integer/],
    ['fractional', [2, 1.5], /shape\[1\].*not a non-negative integer/],
    ['a string', ['4'], /shape\[0\].*not a non-negative integer/],
    ['unsafe', [2 ** 53], /shape\[0\].*not a non-negative integer/],
  ])('rejects a shape that is %s', (_what, shape, pattern) => {
    expectFormatError(() => parse({ t: entry('F32', shape, [0, 4]) }), pattern);
  });

  it.each([
    ['not an array', 'x', /tensor "t": data_offsets must be \[begin, end\]/],
    ['of the wrong length', [0, 4, 8], /data_offsets must be \[begin, end\], got an array of 3/],
    ['negative', [-4, 0], /data_offsets .* must be non-negative integers/],
    ['fractional', [0, 3.5], /data_offsets .* must be non-negative integers/],
    ['unsafe', [0, 2 ** 60], /data_offsets .* must be non-negative integers/],
    ['reversed', [8, 4], /begin 8 is after end 4/],
  ])('rejects data_offsets that are %s', (_what, offsets, pattern) => {
    expectFormatError(() => parse({ t: entry('U8', [4], offsets) }), pattern);
  });

  it('requires end - begin to equal numel * dtype size', () => {
    expectFormatError(() => parse({ t: entry('F32', [2, 2], [0, 12]) }), /tensor "t".*span 12 bytes.*needs 16/);
  });

  it('rejects shapes whose byte size overflows a safe integer', () => {
    expectFormatError(() => parse({ t: entry('F32', [2 ** 30, 2 ** 30, 2 ** 30], [0, 4]) }), /tensor "t": shape .* too large/);
    expectFormatError(() => parse({ t: entry('F64', [2 ** 25, 2 ** 25], [0, 4]) }), /too large/);
  });

  it('allows zero-size tensors, even with huge other dimensions', () => {
    const h = parse({ z: entry('F32', [2 ** 40, 0, 2 ** 40], [0, 0]), s: entry('F32', [0], [4, 4]), t: entry('F32', [1], [0, 4]) }, 4);
    expect(h.tensors.map((t) => t.name)).toEqual(['z', 't', 's']);
  });

  it('rejects a tensor that lies outside the data area (truncated file)', () => {
    expectFormatError(() => parse({ t: entry('F32', [4], [0, 16]) }, 12), /tensor "t".*lie outside the data area \(12 bytes\)/);
  });

  it('rejects overlapping tensors and names both', () => {
    expectFormatError(
      () => parse({ a: entry('F32', [4], [0, 16]), b: entry('F32', [4], [8, 24]) }, 24),
      /"a" \[0, 16\] and "b" \[8, 24\] overlap/,
    );
    // Two tensors sharing one byte range (tied weights stored once) and a range inside another.
    expectFormatError(() => parse({ a: entry('U8', [8], [0, 8]), b: entry('U8', [8], [0, 8]) }, 8), /"a" \[0, 8\] and "b" \[0, 8\] overlap/);
    expectFormatError(
      () => parse({ big: entry('U8', [32], [0, 32]), empty: entry('U8', [0], [8, 8]), small: entry('U8', [4], [4, 8]) }, 32),
      /"big" \[0, 32\] and "small" \[4, 8\] overlap/,
    );
  });
});

describe('parseHeader: __metadata__', () => {
  it('must be an object', () => {
    expectFormatError(() => parse({ __metadata__: ['a'] }), /__metadata__ must be an object/);
    expectFormatError(() => parse({ __metadata__: 'x' }), /__metadata__ must be an object/);
  });

  it('must map strings to strings', () => {
    expectFormatError(() => parse({ __metadata__: { step: 5 } }), /__metadata__ "step" must be a string, got number 5/);
    expectFormatError(() => parse({ __metadata__: { nested: { a: 'b' } } }), /__metadata__ "nested" must be a string/);
  });
});
