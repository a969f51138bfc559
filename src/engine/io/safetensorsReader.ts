/**
 * Lazy safetensors reader: opening a file reads only its header; tensor bytes (or a slice of a tensor's
 * elements) are fetched from the ByteSource when asked, so models far larger than memory can be streamed.
 */
import { readInto, type ByteSource } from './byteSource';
import { throwIfAborted } from '../errors';
import { DTYPE_BYTES, numelOf, type TensorInfo } from '../types';
import { parseHeader, readHeaderLength, type SafetensorsHeader } from './safetensorsHeader';

/** An opened safetensors file whose header has been validated. */
export interface SafetensorsFile {
  readonly name: string;
  readonly size: number;
  readonly header: SafetensorsHeader;
  tensor(name: string): TensorInfo | undefined;
  /** Raw little-endian bytes of a tensor, or of elements [start, start+count) of it. */
  readTensor(name: string, range?: { start: number; count: number }, signal?: AbortSignal): Promise<Uint8Array>;
  /** readTensor's bytes written into `into` (exactly their length) instead (ByteSource.readInto). */
  readTensorInto(name: string, range: { start: number; count: number } | undefined, into: Uint8Array, signal?: AbortSignal): Promise<void>;
}

/** Reads and validates the header of `src`; no tensor data is read until asked. */
export async function openSafetensors(src: ByteSource, signal?: AbortSignal): Promise<SafetensorsFile> {
  throwIfAborted(signal);
  const first8 = await src.read(0, Math.min(8, src.size), signal);
  const headerLength = readHeaderLength(src.name, src.size, first8);
  throwIfAborted(signal);
  const json = await src.read(8, headerLength, signal);
  const header = parseHeader(src.name, src.size, headerLength, json);
  const byName = new Map(header.tensors.map((t) => [t.name, t]));

  return {
    name: src.name,
    size: src.size,
    header,
    tensor: (name) => byName.get(name),
    async readTensor(name, range, readSignal) {
      throwIfAborted(readSignal);
      const info = byName.get(name);
      if (!info) throw new Error(`${src.name}: no tensor named "${name}"`);
      const { offset, length } = byteRange(src.name, info, range);
      return src.read(header.dataOffset + offset, length, readSignal);
    },
    async readTensorInto(name, range, into, readSignal) {
      throwIfAborted(readSignal);
      const info = byName.get(name);
      if (!info) throw new Error(`${src.name}: no tensor named "${name}"`);
      const { offset, length } = byteRange(src.name, info, range);
      if (into.byteLength !== length) throw new RangeError(`${src.name}: tensor "${name}": ${length} bytes read into a buffer of ${into.byteLength}`);
      return readInto(src, header.dataOffset + offset, into, readSignal);
    },
  };
}

/** Data-area byte range of a tensor's elements [start, start+count), checked against its element count. */
function byteRange(fileName: string, info: TensorInfo, range?: { start: number; count: number }): { offset: number; length: number } {
  if (!range) return { offset: info.begin, length: info.end - info.begin };
  const numel = numelOf(info.shape);
  const { start, count } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > numel) {
    throw new RangeError(`${fileName}: tensor "${info.name}": elements [${start}, ${start} + ${count}) are outside its ${numel} elements`);
  }
  const size = DTYPE_BYTES[info.dtype];
  return { offset: info.begin + start * size, length: count * size };
}
