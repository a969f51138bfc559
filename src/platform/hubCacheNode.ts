/**
 * The Hub cache on disk for the command line: one file per cached range in a folder (default
 * ~/.cache/merge-playground/hub, or MERGE_PLAYGROUND_CACHE), each holding its 64-hex-digit sha256 then the bytes.
 * Entries are written to a temp file and renamed into place, so a crash never leaves a half-written entry under a key.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../engine/eval/suite';
import { verifiedCache, type CacheStore, type HubCache } from './hubCache';

/** The cache folder: `explicit`, else $MERGE_PLAYGROUND_CACHE, else ~/.cache/merge-playground/hub. */
export function defaultCacheDir(explicit?: string | null, env: Record<string, string | undefined> = process.env): string {
  return explicit || env.MERGE_PLAYGROUND_CACHE || join(homedir(), '.cache', 'merge-playground', 'hub');
}

const DIGEST_CHARS = 64;

/** A CacheStore in `dir` (created on first write). */
export function dirCacheStore(dir: string): CacheStore {
  const file = async (key: string) => join(dir, `${await sha256Hex(new TextEncoder().encode(key))}.bin`);
  return {
    async read(key) {
      let raw: Buffer;
      try {
        raw = await readFile(await file(key));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
      const sha256 = raw.subarray(0, DIGEST_CHARS).toString('latin1');
      // A copy in its own buffer: readers may view it as typed arrays, which need aligned offsets.
      return { sha256, bytes: new Uint8Array(raw.subarray(DIGEST_CHARS)) };
    },
    async write(key, bytes, sha256) {
      await mkdir(dir, { recursive: true });
      const path = await file(key);
      const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(tmp, Buffer.concat([Buffer.from(sha256, 'latin1'), bytes]));
        await rename(tmp, path);
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        throw new Error(`hub cache ${dir}: cannot write an entry: ${(e as Error).message}`);
      }
    },
    async remove(key) {
      await unlink(await file(key)).catch(() => undefined);
    },
  };
}

/** The verified Hub cache in a folder. */
export function nodeHubCache(dir = defaultCacheDir()): HubCache {
  return verifiedCache(dirCacheStore(dir));
}
