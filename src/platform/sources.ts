/**
 * ByteSources that work in browsers and in Node 20 alike, using only Blob and fetch: a local File/Blob, and
 * a remote file read with HTTP range requests (so a multi-GB model is never downloaded whole just to read
 * its header). Header values (auth tokens) never appear in error messages.
 */
import type { ByteSource } from '../engine/io/byteSource';
import { CancelledError, throwIfAborted } from '../engine/errors';

/** Checks a read request against a source's size. */
function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`${name}: read of ${length} bytes at ${offset} is outside the file (${size} bytes)`);
  }
}

/**
 * Reads of a Blob of at most `smallRead` bytes go through windows of `bytes` read at once, the last `count` of them
 * kept (4 MiB per source): each read of a Blob is an asynchronous round trip to the browser's blob store (about 2 to 3
 * ms in headless Chromium on the demo: 648 reads took about 2 s of each merge), and a merge reads every small tensor
 * (biases, norms) of every model one by one; neighbours in the file then share a read.
 */
export const BLOB_WINDOWS = { bytes: 2 ** 20, smallRead: 64 * 1024, count: 4 } as const;

/** A ByteSource over a Blob or File; `name` is what errors call it. */
export function blobSource(blob: Blob, name: string): ByteSource {
  const readExact = async (offset: number, length: number): Promise<Uint8Array> => {
    const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    if (bytes.byteLength !== length) {
      throw new Error(`${name}: read ${bytes.byteLength} bytes at ${offset}, expected ${length} (the file changed?)`);
    }
    return bytes;
  };
  // Most recently used last. A window is shared by concurrent reads, so it is read without any one caller's signal.
  const windows: { start: number; end: number; bytes: Promise<Uint8Array> }[] = [];
  const windowFor = (offset: number, length: number) => {
    const i = windows.findIndex((w) => w.start <= offset && offset + length <= w.end);
    if (i >= 0) {
      const [w] = windows.splice(i, 1);
      windows.push(w!);
      return w!;
    }
    const start = offset - (offset % BLOB_WINDOWS.bytes);
    const end = Math.min(blob.size, Math.max(start + BLOB_WINDOWS.bytes, offset + length));
    const w = { start, end, bytes: readExact(start, end - start) };
    // A failed read is not kept: the next read tries again.
    w.bytes.catch(() => {
      const j = windows.indexOf(w);
      if (j >= 0) windows.splice(j, 1);
    });
    windows.push(w);
    if (windows.length > BLOB_WINDOWS.count) windows.shift();
    return w;
  };
  return {
    name,
    size: blob.size,
    async read(offset, length, signal, into) {
      checkRange(name, blob.size, offset, length);
      throwIfAborted(signal);
      let bytes: Uint8Array;
      if (length === 0 || length > BLOB_WINDOWS.smallRead) bytes = await readExact(offset, length);
      else {
        const w = windowFor(offset, length);
        // A copy (into the caller's buffer when given): the caller may keep or change it, and the window serves other reads.
        const part = (await w.bytes).subarray(offset - w.start, offset - w.start + length);
        if (into?.byteLength === length) {
          into.set(part);
          bytes = into;
        } else bytes = part.slice();
      }
      throwIfAborted(signal);
      return bytes;
    },
  };
}

/** Options for httpSource. */
interface HttpOptions {
  /** Sent with every request (e.g. Authorization); never echoed in errors. */
  headers?: Record<string, string>;
  /** fetch to use (tests, proxies); defaults to the global one. */
  fetch?: typeof fetch;
  /** Cancels every request of this source. */
  signal?: AbortSignal;
}

/** A remote file read with HTTP Range requests; its size is probed once, here. */
export async function httpSource(url: string, opts: HttpOptions = {}): Promise<ByteSource> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const request: Requester = async (init, signal) => {
    const combined = anySignal(opts.signal, signal);
    throwIfAborted(combined);
    try {
      return await doFetch(url, { ...init, headers: { ...opts.headers, ...init.headers }, signal: combined });
    } catch (e) {
      if (combined?.aborted) throw new CancelledError();
      throw new Error(`${url}: request failed: ${(e as Error).message}`);
    }
  };
  const size = await probeSize(url, request);

  return {
    name: url,
    size,
    async read(offset, length, signal) {
      checkRange(url, size, offset, length);
      if (length === 0) return new Uint8Array(0); // "bytes=a-(a-1)" is not a valid range
      const res = await request({ headers: { Range: `bytes=${offset}-${offset + length - 1}` } }, signal);
      if (res.status !== 206) {
        await discard(res);
        if (res.status === 200) {
          throw new Error(`${url}: the server ignored the Range request (HTTP 200): it does not support partial reads`);
        }
        throw httpError(url, res);
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await res.arrayBuffer());
      } catch (e) {
        if (anySignal(opts.signal, signal)?.aborted) throw new CancelledError();
        throw new Error(`${url}: reading the response failed: ${(e as Error).message}`);
      }
      if (bytes.byteLength !== length) {
        throw new Error(`${url}: asked for ${length} bytes at ${offset}, the server sent ${bytes.byteLength}`);
      }
      return bytes;
    },
  };
}

type Requester = (init: { method?: string; headers?: Record<string, string> }, signal?: AbortSignal) => Promise<Response>;

/** File size from a 1-byte range request's Content-Range, else from a HEAD request's Content-Length. */
async function probeSize(url: string, request: Requester): Promise<number> {
  const res = await request({ headers: { Range: 'bytes=0-0' } });
  await discard(res);
  // "bytes 0-0/1234" for a 206; "bytes */0" for a 416 on an empty file.
  if (res.status === 206 || res.status === 416) {
    const total = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')?.[1];
    if (total !== undefined) return Number(total);
  } else if (!res.ok) {
    throw httpError(url, res);
  }
  const head = await request({ method: 'HEAD' });
  await discard(head);
  if (!head.ok) throw httpError(url, head);
  const length = head.headers.get('content-length');
  if (length === null || !/^\d+$/.test(length.trim())) {
    throw new Error(`${url}: the server reports no file size (no Content-Range or Content-Length)`);
  }
  return Number(length);
}

function httpError(url: string, res: Response): Error {
  return new Error(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
}

/** Drops a response body we do not want, so the connection is freed and nothing more is downloaded. */
async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // Already consumed or errored: nothing to free.
  }
}

/** A signal that fires when either fires. */
function anySignal(a?: AbortSignal, b?: AbortSignal): AbortSignal | undefined {
  if (!a) return b;
  if (!b) return a;
  return AbortSignal.any([a, b]);
}
