/**
 * A model is one safetensors file, or a sharded set of them described by a `model.safetensors.index.json`
 * (`{"metadata": {...}, "weight_map": {"tensor": "shard file name"}}`). Either way it is presented as one
 * map from tensor name to (header entry, file), read lazily.
 */
import type { ByteSource } from './byteSource';
import { FormatError, throwIfAborted } from '../errors';
import type { TensorInfo } from '../types';
import { MAX_HEADER_BYTES } from './safetensorsHeader';
import { openSafetensors, type SafetensorsFile } from './safetensorsReader';

/** One tensor of a model and the file that holds it. */
export interface ModelTensor {
  info: TensorInfo;
  file: SafetensorsFile;
}

/** A model's tensors, gathered from one or more safetensors files. */
export interface Model {
  readonly name: string;
  /** Names of the safetensors files holding the tensors. */
  readonly files: string[];
  readonly tensors: Map<string, ModelTensor>;
  readonly metadata: Record<string, string>;
  /**
   * Raw bytes of a tensor or of elements [start, start + count) of it. `into`, of their length: a model whose sources
   * can fill a caller's buffer without a copy of their own (files, the Hub's blocks) may read into it and return it;
   * callers use what is returned (see `readTensorInto`), so a wrapper that overrides this and drops `into` stays correct.
   */
  readTensor(name: string, range?: { start: number; count: number }, signal?: AbortSignal, into?: Uint8Array): Promise<Uint8Array>;
}

/**
 * Reads a tensor's bytes (or elements [start, start + count)) into `into`, which must be exactly their length: straight
 * in where the model's sources can (a merge passes the GPU's mapped staging buffer), else with one copy.
 */
export async function readTensorInto(model: Model, name: string, range: { start: number; count: number } | undefined, into: Uint8Array, signal?: AbortSignal): Promise<void> {
  const bytes = await model.readTensor(name, range, signal, into);
  if (bytes === into) return;
  if (bytes.byteLength !== into.byteLength) throw new RangeError(`${model.name}: tensor "${name}": ${bytes.byteLength} bytes read into a buffer of ${into.byteLength}`);
  into.set(bytes);
}

/** Builds a Model over tensors that have already been located in their files. */
function makeModel(name: string, files: SafetensorsFile[], tensors: Map<string, ModelTensor>, metadata: Record<string, string>): Model {
  return {
    name,
    files: files.map((f) => f.name),
    tensors,
    metadata,
    readTensor(tensor, range, signal, into) {
      const t = tensors.get(tensor);
      if (!t) return Promise.reject(new Error(`${name}: no tensor named "${tensor}"`));
      return t.file.readTensor(tensor, range, signal, into);
    },
  };
}

/** A model stored in one safetensors file. */
export async function openSingleFileModel(name: string, src: ByteSource, signal?: AbortSignal): Promise<Model> {
  const file = await openSafetensors(src, signal);
  const tensors = new Map(file.header.tensors.map((info) => [info.name, { info, file }]));
  return makeModel(name, [file], tensors, { ...file.header.metadata });
}

/**
 * A sharded model. Each shard is opened once; every tensor of the weight map must be in its shard, and every
 * shard tensor must be in the weight map exactly once (a stale or hand-edited index is caught here).
 * Metadata: the shards' header metadata (earlier shards win), overridden by the index's metadata.
 */
export async function openShardedModel(
  name: string,
  index: ByteSource,
  openShard: (fileName: string) => Promise<ByteSource>,
  signal?: AbortSignal,
): Promise<Model> {
  throwIfAborted(signal);
  const { weightMap, metadata: indexMetadata } = parseIndex(index.name, await readIndex(index, signal));

  const shardNames = [...new Set(weightMap.values())];
  const files = new Map<string, SafetensorsFile>();
  for (const shard of shardNames) {
    throwIfAborted(signal);
    files.set(shard, await openSafetensors(await openShard(shard), signal));
  }

  const tensors = new Map<string, ModelTensor>();
  const shardOf = new Map<string, string>();
  const metadata = new Map<string, string>();
  for (const shard of shardNames) {
    const file = files.get(shard)!;
    for (const [k, v] of Object.entries(file.header.metadata ?? {})) if (!metadata.has(k)) metadata.set(k, v);
    for (const info of file.header.tensors) {
      const other = tensors.get(info.name);
      if (other) throw new FormatError(index.name, `tensor "${info.name}" is in two shards: ${other.file.name} and ${file.name}`);
      tensors.set(info.name, { info, file });
      shardOf.set(info.name, shard);
    }
  }
  for (const [tensor, t] of tensors) {
    const listed = weightMap.get(tensor);
    if (listed === undefined) throw new FormatError(index.name, `tensor "${tensor}" is in shard ${t.file.name} but not in weight_map`);
    if (listed !== shardOf.get(tensor)) {
      throw new FormatError(index.name, `tensor "${tensor}" is in shard ${t.file.name}, but weight_map places it in ${listed}`);
    }
  }
  for (const [tensor, shard] of weightMap) {
    if (!tensors.has(tensor)) {
      const file = files.get(shard)!.name;
      throw new FormatError(index.name, `weight_map places tensor "${tensor}" in ${shard}, but that shard (${file}) lacks it`);
    }
  }
  for (const [k, v] of Object.entries(indexMetadata)) metadata.set(k, v);
  return makeModel(name, [...files.values()], tensors, Object.fromEntries(metadata));
}

/** Reads the whole index file (it is small JSON; the header cap bounds it). */
async function readIndex(index: ByteSource, signal?: AbortSignal): Promise<Uint8Array> {
  if (index.size > MAX_HEADER_BYTES) {
    throw new FormatError(index.name, `index file is ${index.size} bytes, above the limit of ${MAX_HEADER_BYTES}`);
  }
  return index.read(0, index.size, signal);
}

/** Validates the index JSON: a non-empty weight_map of tensor -> plain shard file name, optional flat metadata. */
function parseIndex(fileName: string, bytes: Uint8Array): { weightMap: Map<string, string>; metadata: Record<string, string> } {
  const fail = (message: string): never => {
    throw new FormatError(fileName, message);
  };
  let root: unknown;
  try {
    root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    fail(`index is not valid UTF-8 JSON: ${e instanceof RangeError ? 'it is nested too deeply' : (e as Error).message}`);
  }
  if (!isObject(root)) return fail('index must be a JSON object with a "weight_map" field');

  const map = root['weight_map'];
  if (!isObject(map)) return fail('"weight_map" must be an object mapping tensor names to shard file names');
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (tensor === '') fail('weight_map has an empty tensor name');
    if (typeof shard !== 'string') return fail(`weight_map["${tensor}"] must be a shard file name (a string)`);
    if (!isPlainFileName(shard)) fail(`weight_map["${tensor}"] = ${JSON.stringify(shard)} is not a plain file name (no folders, no "..")`);
    weightMap.set(tensor, shard);
  }
  if (weightMap.size === 0) fail('"weight_map" is empty');

  // HF indexes hold numbers here (total_size), so scalars are kept as their string form.
  const metadata: [string, string][] = [];
  const meta = root['metadata'];
  if (meta !== undefined && meta !== null) {
    if (!isObject(meta)) fail('"metadata" must be an object');
    for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') metadata.push([k, String(v)]);
      else fail(`metadata["${k}"] must be a string, number or boolean`);
    }
  }
  return { weightMap, metadata: Object.fromEntries(metadata) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A shard must sit next to its index: no path separators, no "." or "..", no empty name. */
function isPlainFileName(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && !/[/\\]/.test(s) && !s.includes('\0');
}
