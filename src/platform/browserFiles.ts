/** Browser file handling: models from picked or dropped files, and merged files offered as downloads. */
import type { SuiteFiles } from '../engine/eval/suite';
import type { ByteSink, ByteSource } from '../engine/io/byteSource';
import { openShardedModel, openSingleFileModel, type Model } from '../engine/io/model';
import { blobSource } from './sources';

/**
 * Opens a model from the files a user picked: one .safetensors file, or a model.safetensors.index.json together
 * with its shards.
 */
export async function openModelFromFiles(files: File[], signal?: AbortSignal): Promise<Model> {
  const index = files.find((f) => f.name.endsWith('.index.json'));
  if (index) {
    const byName = new Map(files.map((f) => [f.name, f]));
    return openShardedModel(index.name, blobSource(index, index.name), async (shard) => {
      const f = byName.get(shard);
      if (!f) throw new Error(`${index.name} refers to shard ${shard}: pick it together with the index file`);
      return blobSource(f, f.name);
    }, signal);
  }
  if (files.length !== 1) throw new Error(`pick one .safetensors file per model, or an index.json with its shards (got ${files.length} files)`);
  const f = files[0]!;
  if (!f.name.endsWith('.safetensors')) throw new Error(`${f.name}: expected a .safetensors file`);
  return openSingleFileModel(f.name, blobSource(f, f.name), signal);
}

/** A sink that collects the merged file in memory and yields a Blob once closed; nothing is offered if aborted. */
export function blobSink(name: string): ByteSink & { blob(): Blob | null } {
  let parts: BlobPart[] = [];
  let result: Blob | null = null;
  return {
    name,
    async write(chunk) {
      parts.push(chunk.slice());
    },
    async close() {
      result = new Blob(parts, { type: 'application/octet-stream' });
      parts = [];
    },
    async abort() {
      parts = [];
      result = null;
    },
    blob: () => result,
  };
}

/**
 * An evaluation suite served over HTTP (the embedded demo is served at `<app>/demo/`): each file is fetched whole
 * once as a Blob and then read from it (small ranges through blobSource's windows), so repeated merges never go back to
 * the network.
 */
export function suiteFilesFromUrl(root: string): SuiteFiles {
  const cache = new Map<string, Promise<ByteSource>>();
  return {
    root,
    open(path: string) {
      let file = cache.get(path);
      if (!file) {
        file = (async () => {
          // `root` may be relative to the page (the demo is at `<base>/demo/`).
          const url = new URL(path, new URL(root.endsWith('/') ? root : `${root}/`, location.href)).href;
          const res = await fetch(url);
          if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
          return blobSource(await res.blob(), path);
        })();
        cache.set(path, file);
      }
      return file;
    },
  };
}
