import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/engine/errors';
import { memorySink, memorySource, type ByteSource } from '../../src/engine/io/byteSource';
import { openSafetensors } from '../../src/engine/io/safetensorsReader';
import { SafetensorsWriter, serializeSafetensors, type TensorSpec } from '../../src/engine/io/safetensorsWriter';
import { decodeFloats } from '../../src/engine/tensor/dtype';
import { DTYPE_BYTES, numelOf } from '../../src/engine/types';
import { randomTensor, seededRandom, type FixtureTensor } from '../helpers/safetensorsFixtures';

/** A source that records every read, to prove the reader is lazy. */
function recordingSource(name: string, bytes: Uint8Array): ByteSource & { reads: [number, number][] } {
  const inner = memorySource(name, bytes);
  const reads: [number, number][] = [];
  return {
    name,
    size: inner.size,
    reads,
    read(offset, length, signal) {
      reads.push([offset, length]);
      return inner.read(offset, length, signal);
    },
  };
}

function fixtureTensors(): FixtureTensor[] {
  const rng = seededRandom(42);
  const specs: [string, TensorSpec['dtype'], number[]][] = [
    ['layer.0.weight', 'F32', [7, 5]],
    ['layer.0.bias', 'BF16', [7]],
    ['empty', 'F16', [0, 4]],
    ['position_ids', 'I64', [1, 9]],
    ['mask', 'BOOL', [3]],
    ['scalar', 'F64', []],
    ['layer.1.weight', 'F16', [3, 11]],
  ];
  return specs.map(([name, dtype, shape]) => ({ name, dtype, shape, data: randomTensor(rng, shape, dtype) }));
}

/** Writes `tensors` through the streaming writer, splitting each into chunks of at most `chunk` bytes. */
async function writeStreamed(tensors: FixtureTensor[], chunk: number, metadata?: Record<string, string>): Promise<Uint8Array> {
  const sink = memorySink('out.safetensors');
  const writer = await SafetensorsWriter.create(sink, tensors, metadata);
  for (const t of tensors) {
    for (let o = 0; o < t.data.byteLength; o += chunk) await writer.write(t.name, t.data.subarray(o, o + chunk));
  }
  await writer.finish();
  expect(sink.state()).toBe('closed');
  const bytes = sink.bytes();
  expect(writer.totalBytes).toBe(bytes.byteLength);
  return bytes;
}

describe('safetensors writer and reader', () => {
  it('round-trips tensors written in several chunks each', async () => {
    const tensors = fixtureTensors();
    const bytes = await writeStreamed(tensors, 5);
    const file = await openSafetensors(memorySource('out.safetensors', bytes));
    for (const t of tensors) {
      expect(file.tensor(t.name)).toMatchObject({ dtype: t.dtype, shape: t.shape });
      expect(await file.readTensor(t.name)).toEqual(t.data);
    }
    // The in-memory serializer produces the very same file.
    expect(serializeSafetensors(tensors)).toEqual(bytes);
  });

  it('pads the header with spaces to a multiple of 8 and starts it with "{"', async () => {
    for (const name of ['a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg', 'abcdefgh']) {
      const bytes = serializeSafetensors([{ name, dtype: 'U8', shape: [1], data: new Uint8Array([7]) }]);
      const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(length % 8).toBe(0);
      expect(String.fromCharCode(bytes[8]!)).toBe('{');
      const text = new TextDecoder().decode(bytes.subarray(8, 8 + length));
      expect(text.trimEnd()).toBe(JSON.stringify({ [name]: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }));
      expect(bytes[8 + length]).toBe(7);
    }
  });

  it('round-trips metadata', async () => {
    const metadata = { format: 'pt', 'merge.method': 'ties', note: 'ünïcödé "quoted"' };
    const bytes = await writeStreamed(fixtureTensors(), 64, metadata);
    const file = await openSafetensors(memorySource('m', bytes));
    expect(file.header.metadata).toEqual(metadata);
    expect((await openSafetensors(memorySource('m', serializeSafetensors(fixtureTensors())))).header.metadata).toBeNull();
  });

  it('reads only the header when opened, and only the requested bytes after', async () => {
    const tensors = fixtureTensors();
    const src = recordingSource('lazy', serializeSafetensors(tensors));
    const file = await openSafetensors(src);
    expect(src.reads).toEqual([[0, 8], [8, file.header.headerLength]]);
    const info = file.tensor('layer.1.weight')!;
    const slice = await file.readTensor('layer.1.weight', { start: 4, count: 10 });
    expect(src.reads[2]).toEqual([file.header.dataOffset + info.begin + 8, 20]);
    const t = tensors.find((x) => x.name === 'layer.1.weight')!;
    expect(slice).toEqual(t.data.subarray(8, 28));
    expect([...decodeFloats(slice, 'F16')]).toEqual([...decodeFloats(t.data, 'F16')].slice(4, 14));
  });

  it('checks element ranges and tensor names', async () => {
    const file = await openSafetensors(memorySource('r', serializeSafetensors(fixtureTensors())));
    await expect(file.readTensor('mask', { start: 2, count: 2 })).rejects.toThrow(/r: tensor "mask": elements \[2, 2 \+ 2\) are outside its 3/);
    await expect(file.readTensor('mask', { start: -1, count: 1 })).rejects.toThrow(RangeError);
    await expect(file.readTensor('nope')).rejects.toThrow(/r: no tensor named "nope"/);
    expect(await file.readTensor('mask', { start: 3, count: 0 })).toHaveLength(0);
    expect(await file.readTensor('empty')).toHaveLength(0);
  });

  it('stops on an aborted signal', async () => {
    const bytes = serializeSafetensors(fixtureTensors());
    const controller = new AbortController();
    controller.abort();
    await expect(openSafetensors(memorySource('a', bytes), controller.signal)).rejects.toThrow(CancelledError);
    const file = await openSafetensors(memorySource('a', bytes));
    await expect(file.readTensor('mask', undefined, controller.signal)).rejects.toThrow(CancelledError);
  });

  it('handles a file with no tensors', async () => {
    const file = await openSafetensors(memorySource('none', serializeSafetensors([], { a: 'b' })));
    expect(file.header.tensors).toEqual([]);
    expect(file.header.metadata).toEqual({ a: 'b' });
  });
});

describe('SafetensorsWriter errors', () => {
  const specs: TensorSpec[] = [
    { name: 'a', dtype: 'F32', shape: [2] },
    { name: 'z', dtype: 'F32', shape: [0] },
    { name: 'b', dtype: 'U8', shape: [3] },
  ];
  const make = async () => {
    const sink = memorySink('out');
    return { sink, writer: await SafetensorsWriter.create(sink, specs) };
  };

  it('skips over empty tensors and finishes when complete', async () => {
    const { sink, writer } = await make();
    await writer.write('a', new Uint8Array(8));
    await writer.write('b', new Uint8Array(3));
    await writer.finish();
    const file = await openSafetensors(memorySource('out', sink.bytes()));
    expect(file.header.tensors.map((t) => [t.name, t.begin, t.end])).toEqual([['a', 0, 8], ['z', 8, 8], ['b', 8, 11]]);
  });

  it('rejects tensors out of order', async () => {
    const { writer } = await make();
    await expect(writer.write('b', new Uint8Array(1))).rejects.toThrow(/cannot start tensor "b": tensor "a" is incomplete \(0 of 8/);
    await writer.write('a', new Uint8Array(8));
    await writer.write('b', new Uint8Array(1));
    await expect(writer.write('a', new Uint8Array(1))).rejects.toThrow(/tensor "a" was already written/);
    await expect(writer.write('c', new Uint8Array(1))).rejects.toThrow(/tensor "c" is not in this file's header/);
  });

  it('rejects overflowing a tensor', async () => {
    const { writer } = await make();
    await writer.write('a', new Uint8Array(6));
    await expect(writer.write('a', new Uint8Array(3))).rejects.toThrow(/tensor "a" overflows: 9 bytes written, but it holds 8/);
  });

  it('rejects moving on from an incomplete tensor and finishing early', async () => {
    const { sink, writer } = await make();
    await writer.write('a', new Uint8Array(4));
    await expect(writer.write('b', new Uint8Array(1))).rejects.toThrow(/tensor "a" is incomplete \(4 of 8 bytes/);
    await writer.write('a', new Uint8Array(4));
    await writer.write('b', new Uint8Array(2));
    await expect(writer.finish()).rejects.toThrow(/cannot finish: tensor "b" is incomplete \(2 of 3 bytes/);
    expect(sink.state()).toBe('open');
    await writer.abort();
    expect(sink.state()).toBe('aborted');
    await expect(writer.write('b', new Uint8Array(1))).rejects.toThrow(/writer is aborted/);
  });

  it('rejects bad specs and data of the wrong size', async () => {
    await expect(SafetensorsWriter.create(memorySink('o'), [specs[0]!, specs[0]!])).rejects.toThrow(/"a" is listed twice/);
    await expect(SafetensorsWriter.create(memorySink('o'), [{ name: 'x', dtype: 'F32', shape: [-1] }])).rejects.toThrow(/"x": bad shape/);
    await expect(SafetensorsWriter.create(memorySink('o'), [{ name: '__metadata__', dtype: 'F32', shape: [1] }])).rejects.toThrow(/invalid tensor name/);
    expect(() => serializeSafetensors([{ name: 'x', dtype: 'F32', shape: [2], data: new Uint8Array(4) }])).toThrow(
      /tensor "x": data has 4 bytes, but F32 \[2\] needs 8/,
    );
  });

  it('keeps a tensor named like an Object prototype key', async () => {
    const data = new Uint8Array([1, 2]);
    const bytes = serializeSafetensors([{ name: '__proto__', dtype: 'U8', shape: [2], data }]);
    const file = await openSafetensors(memorySource('p', bytes));
    expect(await file.readTensor('__proto__')).toEqual(data);
  });

  it('sizes match numel * dtype bytes for every fixture', () => {
    for (const t of fixtureTensors()) expect(t.data.byteLength).toBe(numelOf(t.shape) * DTYPE_BYTES[t.dtype]);
  });
});
