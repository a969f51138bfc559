import { mkdtemp, mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/engine/errors';
import { SafetensorsWriter } from '../../src/engine/io/safetensorsWriter';
import { BLOB_WINDOWS, blobSource, httpSource } from '../../src/platform/sources';
import { fileSink, fileSource, openModelPath } from '../../src/platform/nodeFiles';
import { makeModelBytes, makeRelatedModels } from '../helpers/safetensorsFixtures';

const payload = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7 + 3) & 0xff);
const TOKEN = 'hf_secret_token_value';

describe('blobSource', () => {
  it('reads exact ranges and checks bounds', async () => {
    const src = blobSource(new Blob([payload]), 'local.safetensors');
    expect(src.size).toBe(1000);
    expect(await src.read(10, 20)).toEqual(payload.subarray(10, 30));
    expect(await src.read(1000, 0)).toHaveLength(0);
    await expect(src.read(990, 20)).rejects.toThrow(/local.safetensors: read of 20 bytes at 990 is outside the file \(1000 bytes\)/);
    await expect(src.read(-1, 2)).rejects.toThrow(RangeError);
    const controller = new AbortController();
    controller.abort();
    await expect(src.read(0, 1, controller.signal)).rejects.toThrow(CancelledError);
  });
});

describe('blobSource windows', () => {
  const { bytes: W, smallRead, count } = BLOB_WINDOWS;
  /** A Blob over `bytes` that counts its slices (each one read of the browser's blob store). */
  function countingBlob(bytes: Uint8Array<ArrayBuffer>) {
    const blob = new Blob([bytes]);
    const slices: [number, number][] = [];
    // blobSource uses only `size` and `slice`.
    const counted = {
      size: blob.size,
      slice: (start?: number, end?: number) => {
        slices.push([start ?? 0, end ?? blob.size]);
        return blob.slice(start, end);
      },
    } as unknown as Blob;
    return { blob: counted, slices };
  }
  // One window more than are kept, and a bit, so that the last one pushes the first out.
  const big = new Uint8Array((count + 1) * W + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 11)) & 0xff;
  const same = (a: Uint8Array, b: Uint8Array) => expect(Buffer.compare(a, b)).toBe(0);

  it('serves small reads from a few large reads, and large reads directly, with the same bytes', async () => {
    const { blob, slices } = countingBlob(big);
    const src = blobSource(blob, 'model.safetensors');
    // What a caller does to its bytes does not reach the next read from the same window.
    const mine = await src.read(16, 4);
    mine.fill(0);
    expect(await src.read(16, 4)).toEqual(big.subarray(16, 20));
    // 200 small tensors in file order over two windows, as a merge reads biases and norms.
    const step = Math.floor((W - smallRead) / 100);
    for (let i = 0; i < 200; i++) {
      const offset = Math.floor(i / 100) * W + (i % 100) * step + 8;
      const length = i === 7 ? smallRead : 3_000;
      same(await src.read(offset, length), big.subarray(offset, offset + length));
    }
    expect(slices.length).toBe(2);
    // A read across a window's end gets a window of its own; the end of the file is a window's end.
    const across = W - 10;
    expect(await src.read(across, 100)).toEqual(big.subarray(across, across + 100));
    expect(slices.at(-1)).toEqual([0, W + 90]);
    expect(await src.read(big.length - 5, 5)).toEqual(big.subarray(big.length - 5));
    expect(slices.at(-1)).toEqual([(count + 1) * W, big.length]);
    // Larger reads go straight to the Blob.
    const before = slices.length;
    same(await src.read(1_000, smallRead + 1), big.subarray(1_000, 1_000 + smallRead + 1));
    expect(slices.length).toBe(before + 1);
    expect(slices.at(-1)).toEqual([1_000, 1_000 + smallRead + 1]);
  });

  it('shares a window between concurrent reads; keeps only the last few', async () => {
    const { blob, slices } = countingBlob(big);
    const src = blobSource(blob, 'model.safetensors');
    const offsets = [0, 100, 5000, W - 64];
    const reads = await Promise.all(offsets.map((o) => src.read(o, 64)));
    reads.forEach((r, i) => expect(r).toEqual(big.subarray(offsets[i]!, offsets[i]! + 64)));
    expect(slices.length).toBe(1);
    // `count` more windows in turn: the first is read again.
    for (let w = 1; w <= count; w++) await src.read(w * W, 64);
    expect(slices.length).toBe(count + 1);
    await src.read(0, 64);
    expect(slices.length).toBe(count + 2);
  });

  it('a file that changed under it is named in the error, and a failed window is read again', async () => {
    const bytes = payload.slice();
    let short = true;
    const blob = {
      size: 1000,
      slice: (start?: number, end?: number) => new Blob([bytes.subarray(start, short ? Math.min(end ?? 1000, 500) : end)]),
    } as unknown as Blob;
    const src = blobSource(blob, 'local.safetensors');
    await expect(src.read(600, 10)).rejects.toThrow(/local.safetensors: read \d+ bytes at 0, expected 1000 \(the file changed\?\)/);
    short = false;
    expect(await src.read(600, 10)).toEqual(payload.subarray(600, 610));
  });
});

describe('httpSource', () => {
  type Mode = 'range' | 'ignore-range' | 'short' | 'not-found';
  let server: Server;
  let base = '';
  const seen: { method: string; range: string | undefined; auth: string | undefined }[] = [];

  /** Serves `payload` at /<mode>/file; how it answers depends on the mode in the path. */
  function handle(req: IncomingMessage, res: ServerResponse): void {
    const mode = req.url!.split('/')[1] as Mode;
    seen.push({ method: req.method!, range: req.headers.range, auth: req.headers.authorization });
    if (mode === 'not-found') {
      res.writeHead(404, 'Not Found').end('no such model');
      return;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Length': String(payload.byteLength) }).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (mode === 'ignore-range' || !m) {
      res.writeHead(200, { 'Content-Length': String(payload.byteLength) }).end(payload);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), payload.byteLength - 1);
    // "short" claims the range but sends one byte less, without a Content-Length to give it away.
    const body = payload.subarray(start, mode === 'short' ? end : end + 1);
    res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${payload.byteLength}` }).end(body);
  }

  beforeAll(async () => {
    server = createServer(handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    seen.length = 0;
  });

  it('gets the size from a 1-byte range probe and reads ranges, sending the given headers', async () => {
    const src = await httpSource(`${base}/range/model.safetensors`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(src.size).toBe(1000);
    expect(src.name).toBe(`${base}/range/model.safetensors`);
    expect(await src.read(100, 50)).toEqual(payload.subarray(100, 150));
    expect(await src.read(999, 1)).toEqual(payload.subarray(999));
    expect(await src.read(5, 0)).toHaveLength(0);
    expect(seen.map((s) => s.range)).toEqual(['bytes=0-0', 'bytes=100-149', 'bytes=999-999']);
    expect(seen.every((s) => s.auth === `Bearer ${TOKEN}`)).toBe(true);
    await expect(src.read(990, 20)).rejects.toThrow(/outside the file \(1000 bytes\)/);
  });

  it('uses the fetch it is given', async () => {
    const calls: string[] = [];
    const counting: typeof fetch = (input, init) => {
      calls.push(String(input));
      return fetch(input, init);
    };
    const src = await httpSource(`${base}/range/f`, { fetch: counting });
    await src.read(0, 8);
    expect(calls).toEqual([`${base}/range/f`, `${base}/range/f`]);
  });

  it('falls back to HEAD for the size and fails clearly when the server ignores Range', async () => {
    const src = await httpSource(`${base}/ignore-range/model.safetensors`);
    expect(src.size).toBe(1000);
    expect(seen.map((s) => s.method)).toEqual(['GET', 'HEAD']);
    await expect(src.read(0, 8)).rejects.toThrow(/ignore-range\/model.safetensors: the server ignored the Range request \(HTTP 200\)/);
  });

  it('names the URL and status on HTTP errors, never the token', async () => {
    const url = `${base}/not-found/model.safetensors`;
    const error = await httpSource(url, { headers: { Authorization: `Bearer ${TOKEN}` } }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toBe(`${url}: HTTP 404 Not Found`);
    expect(error?.message).not.toContain(TOKEN);
  });

  it('rejects a response of the wrong length', async () => {
    const src = await httpSource(`${base}/short/model.safetensors`);
    await expect(src.read(10, 20)).rejects.toThrow(/asked for 20 bytes at 10, the server sent 19/);
  });

  it('reports connection failures with the URL and cancellation as CancelledError', async () => {
    await expect(httpSource('http://127.0.0.1:1/x')).rejects.toThrow(/http:\/\/127.0.0.1:1\/x: request failed/);
    const controller = new AbortController();
    const src = await httpSource(`${base}/range/f`, { signal: controller.signal });
    controller.abort();
    await expect(src.read(0, 4)).rejects.toThrow(CancelledError);
    const perRead = new AbortController();
    perRead.abort();
    const src2 = await httpSource(`${base}/range/f`);
    await expect(src2.read(0, 4, perRead.signal)).rejects.toThrow(CancelledError);
  });
});

describe('Node files', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'merge-playground-sources-'));
    return () => rm(dir, { recursive: true, force: true });
  });

  it('fileSource reads ranges and reports missing files clearly', async () => {
    const path = join(dir, 'data.bin');
    await writeFile(path, payload);
    const src = await fileSource(path);
    expect(src.size).toBe(1000);
    expect(await src.read(250, 500)).toEqual(payload.subarray(250, 750));
    await expect(src.read(999, 2)).rejects.toThrow(/outside the file/);
    await expect(fileSource(join(dir, 'missing.bin'))).rejects.toThrow(/missing.bin: cannot open: no such file or folder/);
    await expect(fileSource(dir)).rejects.toThrow(/not a regular file/);
  });

  it('fileSource keeps one handle for a burst of reads and closes it when idle', async () => {
    const path = join(dir, 'data.bin');
    await writeFile(path, payload);
    // Handles this process holds on the file (Linux: /proc/self/fd links to the path).
    const handles = async () => {
      const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(join('/proc/self/fd', fd)).catch(() => '')));
      return links.filter((l) => l === path).length;
    };
    // An idle time long enough that a loaded machine still checks the handle before it closes.
    const idleMs = 500;
    const src = await fileSource(path, idleMs);
    const parts = await Promise.all(Array.from({ length: 20 }, (_, i) => src.read(i * 50, 50)));
    parts.forEach((p, i) => expect(p).toEqual(payload.subarray(i * 50, i * 50 + 50)));
    expect(await handles()).toBe(1);
    await new Promise((r) => setTimeout(r, 2 * idleMs));
    expect(await handles()).toBe(0);
    // Reads after the idle close open the file again.
    expect(await src.read(990, 10)).toEqual(payload.subarray(990));
    await rm(path);
    await new Promise((r) => setTimeout(r, 2 * idleMs));
    await expect(src.read(0, 10)).rejects.toThrow(/data.bin: cannot open: no such file or folder/);
  });

  it('fileSink renames onto the path on close, leaving no temp file', async () => {
    const path = join(dir, 'merged.safetensors');
    await writeFile(path, 'old contents');
    const sink = await fileSink(path);
    await sink.write(payload.subarray(0, 300));
    expect(await readFile(path, 'utf8')).toBe('old contents'); // untouched until close
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toHaveLength(1);
    await sink.write(payload.subarray(300));
    await sink.close();
    expect(new Uint8Array(await readFile(path))).toEqual(payload);
    expect(await readdir(dir)).toEqual(['merged.safetensors']);
    await sink.abort(); // after a commit, abort keeps the output
    expect(await readdir(dir)).toEqual(['merged.safetensors']);
    await expect(sink.write(payload)).rejects.toThrow(/write after the output was closed/);
  });

  it('fileSink abort, or a failed write, leaves nothing behind', async () => {
    const path = join(dir, 'merged.safetensors');
    const sink = await fileSink(path);
    await sink.write(payload);
    await sink.abort();
    expect(await readdir(dir)).toEqual([]);
    await expect(sink.close()).rejects.toThrow(/close after the output was aborted/);

    const failing = await fileSink(path);
    await failing.write(payload);
    await expect(failing.write(null as unknown as Uint8Array)).rejects.toThrow(/merged.safetensors: write failed/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('fileSink names the output when its folder is missing', async () => {
    await expect(fileSink(join(dir, 'nope', 'out.safetensors'))).rejects.toThrow(/out.safetensors: cannot create the output file in .*nope: no such file or folder/);
  });

  it('fileSink refuses a folder at the output path before anything is written', async () => {
    const folder = join(dir, 'a-folder.safetensors');
    await mkdir(folder);
    await expect(fileSink(folder)).rejects.toThrow(/a-folder.safetensors: cannot write the output there: is a folder, not a file/);
    expect((await readdir(dir)).filter((f) => f.includes('a-folder') && f.endsWith('.tmp'))).toEqual([]);
  });

  it('a writer streaming to a fileSink produces a model openModelPath reads back', async () => {
    const { base } = makeRelatedModels({ seed: 5, dtype: 'F16', models: 0, shapes: { w: [4, 4], b: [4] } });
    const path = join(dir, 'out.safetensors');
    const writer = await SafetensorsWriter.create(await fileSink(path), base, { merged: 'yes' });
    for (const t of base) await writer.write(t.name, t.data);
    await writer.finish();
    const model = await openModelPath(path);
    expect(model.metadata).toEqual({ merged: 'yes' });
    for (const t of base) expect(await model.readTensor(t.name)).toEqual(t.data);
  });

  it('openModelPath opens a file, a folder, an index and a folder with an index', async () => {
    const { base } = makeRelatedModels({ seed: 6, dtype: 'F32', models: 0, shapes: { a: [3], b: [2, 2] } });
    const single = join(dir, 'single');
    await mkdir(single);
    await writeFile(join(single, 'model.safetensors'), makeModelBytes(base));
    const sharded = join(dir, 'sharded');
    await mkdir(sharded);
    await writeFile(join(sharded, 'part-1.safetensors'), makeModelBytes([base[0]!]));
    await writeFile(join(sharded, 'part-2.safetensors'), makeModelBytes([base[1]!]));
    const index = { metadata: { total_size: 28 }, weight_map: { a: 'part-1.safetensors', b: 'part-2.safetensors' } };
    await writeFile(join(sharded, 'model.safetensors.index.json'), JSON.stringify(index));

    for (const path of [single, join(single, 'model.safetensors'), sharded, join(sharded, 'model.safetensors.index.json')]) {
      const model = await openModelPath(path);
      expect(model.name).toBe(path);
      for (const t of base) expect(await model.readTensor(t.name)).toEqual(t.data);
    }
    expect((await openModelPath(sharded)).files).toEqual([join(sharded, 'part-1.safetensors'), join(sharded, 'part-2.safetensors')]);
  });

  it('openModelPath explains what it looked for', async () => {
    await expect(openModelPath(dir)).rejects.toThrow(/folder holds no model: looked for model.safetensors and model.safetensors.index.json/);
    await expect(openModelPath(join(dir, 'missing'))).rejects.toThrow(/missing: no such file or folder/);
    await writeFile(join(dir, 'weights.bin'), payload);
    await expect(openModelPath(join(dir, 'weights.bin'))).rejects.toThrow(/expected a .safetensors file or a .safetensors.index.json/);
  });
});
