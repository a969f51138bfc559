/**
 * Lazy safetensors reader: opening a file reads only its header; tensor bytes (or a slice of a tensor's
 * elements) are fetched from the ByteSource when asked, so models far larger than memory can be streamed.
 */
import type { ByteSource } from './byteSource';
import { throwIfAborted } from '../errors';
import { DTYPE_BYTES, numelOf, type TensorInfo } from '../types';
import { parseHeader, readHeaderLength, type SafetensorsHeader } from './safetensorsHeader';

/** An opened safetensors file whose header has been validated. */
export interface SafetensorsFile {
  readonly name: string;
  readonly size: number;
  readonly header: SafetensorsHeader;
  tensor(name: string): TensorInfo | undefined;
  /**
   * Raw little-endian bytes of a tensor, or of elements [start, start+count) of it; `into`, of their length, is passed
   * to the source's read (ByteSource.read), which may fill and return it.
   */
  readTensor(name: string, range?: { start: number; count: number }, signal?: AbortSignal, into?: Uint8Array): Promise<Uint8Array>;
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
    async readTensor(name, range, readSignal, into) {
      throwIfAborted(readSignal);
      const info = byName.get(name);
      if (!info) throw new Error(`${src.name}: no tensor named "${name}"`);
      const { offset, length } = byteRange(src.name, info, range);
      return src.read(header.dataOffset + offset, length, readSignal, into?.byteLength === length ? into : undefined);
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
