/**
 * Node file access for the CLI and tests: positional reads as a ByteSource, atomic writes as a ByteSink
 * (a temp file in the target folder, renamed into place on close, deleted on abort), and opening a model by path.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath, sep } from 'node:path';
import type { ByteSink, ByteSource } from '../engine/io/byteSource';
import { throwIfAborted } from '../engine/errors';
import { openShardedModel, openSingleFileModel, type Model } from '../engine/io/model';
import type { SuiteFiles } from '../engine/eval/suite';

/** Why a file operation failed, in words, for the common error codes. */
export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or folder';
  if (code === 'EEXIST') return 'it is a file';
  if (code === 'ENOTDIR') return 'a part of the path is a file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a folder, not a file';
  return (e as Error).message;
}

/** How long a file source keeps its file open after its last read. */
const IDLE_CLOSE_MS = 1000;

/**
 * A local file read with positional reads. Reads come in bursts (a merge reads every model chunk by chunk), so one
 * handle serves them all: opening the file for each read cost about four times a 4 KiB read (205 us against 55 us
 * here). The handle closes once no read has come for `idleCloseMs` (ByteSource has no close(); the timer is unref'd,
 * so it never keeps the process alive, and a handle is never left to the garbage collector).
 */
export async function fileSource(path: string, idleCloseMs = IDLE_CLOSE_MS): Promise<ByteSource> {
  const info = await stat(path).catch((e: unknown) => {
    throw new Error(`${path}: cannot open: ${describeFsError(e)}`);
  });
  if (!info.isFile()) throw new Error(`${path}: cannot open: not a regular file`);
  const size = info.size;
  let handle: Promise<FileHandle> | null = null;
  let reading = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const acquire = (): Promise<FileHandle> => {
    if (timer) clearTimeout(timer);
    timer = null;
    reading++;
    handle ??= open(path, 'r').catch((e: unknown) => {
      handle = null;
      throw new Error(`${path}: cannot open: ${describeFsError(e)}`);
    });
    return handle;
  };
  const release = (): void => {
    if (--reading > 0) return;
    timer = setTimeout(() => {
      timer = null;
      const h = handle;
      handle = null;
      void h?.then((fh) => fh.close()).catch(() => undefined);
    }, idleCloseMs);
    timer.unref();
  };
  return {
    name: path,
    size,
    async read(offset, length, signal, into) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new RangeError(`${path}: read of ${length} bytes at ${offset} is outside the file (${size} bytes)`);
      }
      throwIfAborted(signal);
      // Straight into the caller's buffer when it is given (the kernel copies the file's bytes once).
      const out = into?.byteLength === length ? into : new Uint8Array(length);
      try {
        const done = await readFully(await acquire(), out, offset);
        // 0 bytes from a positional read before the end means the file shrank under us.
        if (done < length) throw new Error(`${path}: file ended at ${offset + done}, expected ${size} bytes (it changed while reading)`);
      } finally {
        release();
      }
      return out;
    },
  };
}

/** Positional reads from `position` until `into` is full or the file ends (a read may return fewer bytes than asked); returns the bytes read. */
export async function readFully(handle: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < into.byteLength) {
    const { bytesRead } = await handle.read(into, done, into.byteLength - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * An atomic file writer: bytes go to `.<name>.<random>.tmp` next to `path`; close() fsyncs and renames it onto
 * `path`; abort() or any failed write deletes it. A failed merge therefore never leaves a partial output file.
 */
export async function fileSink(path: string): Promise<ByteSink> {
  // A folder in the way would fail only at the final rename, after all the work: say so now.
  if ((await stat(path).catch(() => null))?.isDirectory()) throw new Error(`${path}: cannot write the output there: is a folder, not a file`);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(tmp, 'wx');
  } catch (e) {
    throw new Error(`${path}: cannot create the output file in ${dirname(path)}: ${describeFsError(e)}`);
  }
  let state: 'open' | 'closed' | 'aborted' = 'open';

  const discard = async (): Promise<void> => {
    state = 'aborted';
    const h = handle;
    handle = undefined;
    await h?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
  };

  return {
    name: path,
    async write(chunk) {
      if (state !== 'open' || !handle) throw new Error(`${path}: write after the output was ${state}`);
      try {
        let done = 0;
        while (done < chunk.byteLength) {
          const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
          done += bytesWritten;
        }
      } catch (e) {
        await discard();
        throw new Error(`${path}: write failed: ${describeFsError(e)}`);
      }
    },
    async close() {
      if (state !== 'open' || !handle) throw new Error(`${path}: close after the output was ${state}`);
      try {
        await handle.sync();
        await handle.close();
        handle = undefined;
        await rename(tmp, path);
        state = 'closed';
      } catch (e) {
        await discard();
        throw new Error(`${path}: could not save the output: ${describeFsError(e)}`);
      }
    },
    async abort() {
      // After a successful close the output is committed; abort must not delete it.
      if (state === 'open') await discard();
    },
  };
}

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';

/**
 * Opens a model from a `.safetensors` file, a `*.safetensors.index.json` file, or a folder holding
 * model.safetensors or model.safetensors.index.json.
 */
export async function openModelPath(path: string, signal?: AbortSignal): Promise<Model> {
  const kind = await statKind(path);
  if (kind === 'missing') throw new Error(`${path}: no such file or folder`);
  if (kind === 'dir') {
    for (const candidate of [SINGLE, INDEX]) {
      const file = join(path, candidate);
      if ((await statKind(file)) === 'file') return openModelFile(path, file, signal);
    }
    throw new Error(`${path}: folder holds no model: looked for ${SINGLE} and ${INDEX}`);
  }
  return openModelFile(path, path, signal);
}

/** Opens `file` as a single-file or sharded model named `name`. */
async function openModelFile(name: string, file: string, signal?: AbortSignal): Promise<Model> {
  throwIfAborted(signal);
  if (file.endsWith('.index.json')) {
    const folder = dirname(file);
    return openShardedModel(name, await fileSource(file), (shard) => fileSource(join(folder, shard)), signal);
  }
  if (file.endsWith('.safetensors')) return openSingleFileModel(name, await fileSource(file), signal);
  throw new Error(`${file}: not a model file: expected a .safetensors file or a .safetensors.index.json index`);
}

async function statKind(path: string): Promise<'file' | 'dir' | 'missing' | 'other'> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return 'missing';
    throw new Error(`${path}: cannot open: ${describeFsError(e)}`);
  }
}

/** An evaluation suite stored in a folder (e.g. public/demo): files by path relative to it, never outside it. */
export function suiteFilesFromDir(dir: string): SuiteFiles {
  const root = resolvePath(dir);
  return {
    root: dir,
    async open(path: string) {
      const full = resolvePath(root, path);
      if (!full.startsWith(root + sep)) throw new Error(`${path}: outside the suite folder ${dir}`);
      return fileSource(full);
    },
  };
}
