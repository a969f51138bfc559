/**
 * Tensor reads of a Hub model in fixed blocks of BLOCK_BYTES counted from each tensor's start: the unit of download
 * and of caching, so any slice the merge asks for maps to the same cache entries and a big tensor read in chunks is
 * downloaded once.
 */
import type { ModelTensor } from '../engine/io/model';
import { DTYPE_BYTES, numelOf } from '../engine/types';
import type { ProgressTracker } from './hubProgress';

/** Default block size: big enough for few requests, small enough to hold a few in memory. */
export const BLOCK_BYTES = 16 * 1024 * 1024;

/** Reads (and prefetches) tensors block by block; the last few blocks are kept in memory for chunked reads. */
export function blockReader(model: string, tensors: Map<string, ModelTensor>, tracker: () => ProgressTracker, blockBytes = BLOCK_BYTES) {
  const recent = new Map<string, Uint8Array>();
  const completed = new Set<string>();
  const block = async (name: string, k: number, signal?: AbortSignal): Promise<Uint8Array> => {
    const t = tensors.get(name)!;
    const size = DTYPE_BYTES[t.info.dtype];
    const per = Math.max(1, Math.floor(blockBytes / size));
    const numel = numelOf(t.info.shape);
    const key = `${name}#${k}`;
    let bytes = recent.get(key);
    if (!bytes) {
      const track = tracker();
      track.setFile(`${t.file.name}: ${name}`);
      bytes = await t.file.readTensor(name, { start: k * per, count: Math.min(per, numel - k * per) }, signal);
      recent.set(key, bytes);
      if (recent.size > 4) recent.delete(recent.keys().next().value!);
      if (!completed.has(key)) {
        completed.add(key);
        track.completed(bytes.byteLength);
      }
    }
    return bytes;
  };
  /** The elements' bytes, copied from the blocks into `into` when it is given with their length (Model.readTensor). */
  const read = async (name: string, range?: { start: number; count: number }, signal?: AbortSignal, into?: Uint8Array): Promise<Uint8Array> => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${model}: no tensor named "${name}"`);
    const size = DTYPE_BYTES[t.info.dtype];
    const numel = numelOf(t.info.shape);
    const per = Math.max(1, Math.floor(blockBytes / size));
    const start = range?.start ?? 0;
    const count = range?.count ?? numel;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > numel) {
      throw new RangeError(`${t.file.name}: tensor "${name}": elements [${start}, ${start} + ${count}) are outside its ${numel} elements`);
    }
    const out = into?.byteLength === count * size ? into : new Uint8Array(count * size);
    for (let e = start; e < start + count; ) {
      const k = Math.floor(e / per);
      const b = await block(name, k, signal);
      const from = e - k * per;
      const n = Math.min(start + count - e, b.byteLength / size - from);
      out.set(b.subarray(from * size, (from + n) * size), (e - start) * size);
      e += n;
    }
    return out;
  };
  const prefetch = async (name: string, signal?: AbortSignal) => {
    const t = tensors.get(name)!;
    const size = DTYPE_BYTES[t.info.dtype];
    const per = Math.max(1, Math.floor(blockBytes / size));
    const blocksOf = Math.ceil(numelOf(t.info.shape) / per);
    for (let k = 0; k < blocksOf; k++) await block(name, k, signal);
  };
  return { read, prefetch };
}
