/**
 * Safetensors writer. The header (with every tensor's offsets) is computed up front from the tensor specs,
 * so tensor data can then be streamed to the sink chunk by chunk in spec order with bounded memory.
 */
import type { ByteSink } from './byteSource';
import { DTYPE_BYTES, DTYPES, type DType } from '../types';

/** A tensor to be written: its bytes follow later through `write`. */
export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

/** Tensor byte sizes and the encoded header (8-byte length + JSON padded with spaces to a multiple of 8). */
function buildHeader(specs: TensorSpec[], metadata?: Record<string, string>): { header: Uint8Array; sizes: number[] } {
  // No prototype: a tensor named "__proto__" must become a plain key.
  const json: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`metadata "${k}" must be a string`);
    }
    json['__metadata__'] = metadata;
  }
  const seen = new Set<string>();
  const sizes: number[] = [];
  let offset = 0;
  for (const spec of specs) {
    const size = specByteSize(spec);
    if (seen.has(spec.name)) throw new TypeError(`tensor "${spec.name}" is listed twice`);
    seen.add(spec.name);
    json[spec.name] = { dtype: spec.dtype, shape: spec.shape, data_offsets: [offset, offset + size] };
    sizes.push(size);
    offset += size;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  // Padding keeps the data area 8-byte aligned, so readers can map tensors as typed arrays directly.
  const padded = Math.ceil(text.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + text.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(text, 8);
  return { header, sizes };
}

/** Byte size of a spec after checking its name, dtype and shape. */
function specByteSize(spec: TensorSpec): number {
  if (typeof spec.name !== 'string' || spec.name === '' || spec.name === '__metadata__') {
    throw new TypeError(`invalid tensor name ${JSON.stringify(spec.name)}`);
  }
  if (!DTYPES.includes(spec.dtype)) throw new TypeError(`tensor "${spec.name}": unknown dtype ${spec.dtype}`);
  let size = DTYPE_BYTES[spec.dtype];
  for (const d of spec.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new TypeError(`tensor "${spec.name}": bad shape [${spec.shape.join(', ')}]`);
    size *= d;
  }
  if (!Number.isSafeInteger(size)) throw new TypeError(`tensor "${spec.name}": shape [${spec.shape.join(', ')}] is too large`);
  return size;
}

/** Streams a safetensors file to a sink: tensors in spec order, each as one or more consecutive chunks. */
export class SafetensorsWriter {
  private current = 0;
  private written = 0;
  private state: 'open' | 'finished' | 'aborted' = 'open';

  /** Size of the whole file being written (header and data), in bytes. */
  readonly totalBytes: number;

  private constructor(
    private readonly sink: ByteSink,
    private readonly specs: TensorSpec[],
    private readonly sizes: number[],
    headerBytes: number,
  ) {
    this.totalBytes = sizes.reduce((a, b) => a + b, headerBytes);
  }

  /** Computes offsets in the given order and writes the header. */
  static async create(sink: ByteSink, specs: TensorSpec[], metadata?: Record<string, string>): Promise<SafetensorsWriter> {
    const { header, sizes } = buildHeader(specs, metadata);
    await sink.write(header);
    return new SafetensorsWriter(sink, specs, sizes, header.byteLength);
  }

  /** Appends the next chunk of tensor `name`. */
  async write(name: string, bytes: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new Error(`${this.sink.name}: cannot write tensor "${name}": the writer is ${this.state}`);
    if (this.specs[this.current]?.name !== name) this.advanceTo(name);
    const size = this.sizes[this.current]!;
    if (this.written + bytes.byteLength > size) {
      throw new Error(
        `${this.sink.name}: tensor "${name}" overflows: ${this.written + bytes.byteLength} bytes written, but it holds ${size}`,
      );
    }
    this.written += bytes.byteLength;
    await this.sink.write(bytes);
  }

  /** Checks that every tensor is complete, then commits the sink. */
  async finish(): Promise<void> {
    if (this.state !== 'open') throw new Error(`${this.sink.name}: cannot finish: the writer is ${this.state}`);
    this.checkCompleteFrom(this.current, this.specs.length, 'cannot finish');
    this.state = 'finished';
    await this.sink.close();
  }

  /** Discards the output. */
  async abort(): Promise<void> {
    if (this.state === 'finished') return;
    this.state = 'aborted';
    await this.sink.abort();
  }

  /** Moves on to tensor `name`, which must come next (only empty tensors may be skipped over). */
  private advanceTo(name: string): void {
    const target = this.specs.findIndex((s) => s.name === name);
    if (target < 0) throw new Error(`${this.sink.name}: tensor "${name}" is not in this file's header`);
    if (target < this.current) {
      throw new Error(`${this.sink.name}: tensor "${name}" was already written; tensors must be written in header order`);
    }
    this.checkCompleteFrom(this.current, target, `cannot start tensor "${name}"`);
    this.current = target;
    this.written = 0;
  }

  /** Throws naming the first tensor in [from, to) that is not fully written. */
  private checkCompleteFrom(from: number, to: number, context: string): void {
    for (let i = from; i < to; i++) {
      const done = i === this.current ? this.written : 0;
      if (done !== this.sizes[i]) {
        throw new Error(
          `${this.sink.name}: ${context}: tensor "${this.specs[i]!.name}" is incomplete (${done} of ${this.sizes[i]} bytes written)`,
        );
      }
    }
  }
}

/** A whole safetensors file in memory (tests and small files). */
export function serializeSafetensors(
  tensors: { name: string; dtype: DType; shape: number[]; data: Uint8Array }[],
  metadata?: Record<string, string>,
): Uint8Array {
  const { header, sizes } = buildHeader(tensors, metadata);
  const out = new Uint8Array(header.byteLength + sizes.reduce((a, b) => a + b, 0));
  out.set(header);
  let offset = header.byteLength;
  tensors.forEach((t, i) => {
    if (t.data.byteLength !== sizes[i]) {
      const what = `${t.dtype} [${t.shape.join(', ')}]`;
      throw new TypeError(`tensor "${t.name}": data has ${t.data.byteLength} bytes, but ${what} needs ${sizes[i]}`);
    }
    out.set(t.data, offset);
    offset += t.data.byteLength;
  });
  return out;
}
