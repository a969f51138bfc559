/**
 * Random-access byte sources and sequential sinks. The engine reads models and writes merged files only
 * through these interfaces; src/platform provides them for Blob/File, HTTP range requests and Node files.
 */

/** A readable, random-access file. `name` is what error messages call it (a path, file name or URL). */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  /**
   * Reads exactly `length` bytes starting at `offset`; rejects if the range is out of bounds. `into` (`length` bytes):
   * a source that can fill a caller's buffer without a copy of its own may read into it and return it (a merge passes
   * the GPU's mapped staging buffer); callers use what is returned (model.ts readTensorInto copies it when it is not
   * `into`), so a wrapper that overrides `read` and does not pass `into` on stays correct.
   */
  read(offset: number, length: number, signal?: AbortSignal, into?: Uint8Array): Promise<Uint8Array>;
}

/** A write-once, sequential output. `close()` commits it; `abort()` discards everything written. */
export interface ByteSink {
  readonly name: string;
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

/** An in-memory ByteSource (tests, generated models, small downloads). */
export function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (offset < 0 || length < 0 || offset + length > bytes.byteLength) {
        throw new RangeError(`${name}: read of ${length} bytes at ${offset} is outside the file (${bytes.byteLength} bytes)`);
      }
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** An in-memory ByteSink; `bytes()` returns everything written once closed. */
export function memorySink(name: string): ByteSink & { bytes(): Uint8Array; state(): 'open' | 'closed' | 'aborted' } {
  let parts: Uint8Array[] = [];
  let state: 'open' | 'closed' | 'aborted' = 'open';
  return {
    name,
    async write(chunk) {
      if (state !== 'open') throw new Error(`${name}: write after ${state}`);
      parts.push(chunk.slice());
    },
    async close() {
      state = 'closed';
    },
    async abort() {
      state = 'aborted';
      parts = [];
    },
    state: () => state,
    bytes() {
      const total = parts.reduce((s, p) => s + p.byteLength, 0);
      const out = new Uint8Array(total);
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.byteLength;
      }
      return out;
    },
  };
}
