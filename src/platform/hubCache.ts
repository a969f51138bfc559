/**
 * Cache of downloaded Hub bytes, keyed by endpoint + repo + commit + file + byte range (a commit never changes, so an
 * entry never goes stale). Every entry carries the sha256 of its bytes, checked on every read: a corrupt entry is
 * deleted and reported as a miss, so the caller downloads it again and never sees bad bytes.
 * Stores: memory (tests, pages without Cache API), the browser's Cache API (here) and a Node folder (hubCacheNode.ts).
 */

import { sha256Hex } from '../engine/eval/suite';

/** Where cached byte ranges live. */
export interface HubCache {
  /** The bytes stored under `key` if their checksum holds; a corrupt entry is deleted and gives null. */
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, bytes: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
}

/** The raw storage under a HubCache: a blob and its checksum per key. */
export interface CacheStore {
  read(key: string): Promise<{ bytes: Uint8Array; sha256: string } | null>;
  write(key: string, bytes: Uint8Array, sha256: string): Promise<void>;
  remove(key: string): Promise<void>;
}

/** What identifies one cached range. The token is not part of it: bytes of a commit are the same for every reader. */
export interface CacheKeyParts {
  endpoint: string;
  repo: string;
  commit: string;
  path: string;
  offset: number;
  length: number;
}

export function cacheKey(k: CacheKeyParts): string {
  return [k.endpoint.replace(/\/+$/, ''), k.repo, k.commit, k.path, `${k.offset}+${k.length}`].join('|');
}

/** A HubCache over a store: checksums written with each entry and verified on each read (with `hash`: sha256, hex). */
export function verifiedCache(store: CacheStore, onCorrupt?: (key: string) => void, hash: (bytes: Uint8Array) => Promise<string> = sha256Hex): HubCache {
  return {
    async get(key) {
      let entry: Awaited<ReturnType<CacheStore['read']>>;
      try {
        entry = await store.read(key);
      } catch {
        entry = { bytes: new Uint8Array(0), sha256: 'unreadable' };
      }
      if (!entry) return null;
      if ((await hash(entry.bytes)) !== entry.sha256) {
        onCorrupt?.(key);
        await store.remove(key).catch(() => undefined);
        return null;
      }
      return entry.bytes;
    },
    async put(key, bytes) {
      await store.write(key, bytes, await hash(bytes));
    },
    async delete(key) {
      await store.remove(key);
    },
  };
}

/** A store in memory (its entries can be edited through `entries`, to test corruption). */
export function memoryStore(): CacheStore & { entries: Map<string, { bytes: Uint8Array; sha256: string }> } {
  const entries = new Map<string, { bytes: Uint8Array; sha256: string }>();
  return {
    entries,
    async read(key) {
      return entries.get(key) ?? null;
    },
    async write(key, bytes, sha256) {
      entries.set(key, { bytes: bytes.slice(), sha256 });
    },
    async remove(key) {
      entries.delete(key);
    },
  };
}

// Cache API keys must be http(s) URLs; entries are named by the sha256 of the key (keys hold file paths).
const CACHE_NAME = 'merge-playground-hub-v1';
const CACHE_URL = 'https://merge-playground.invalid/hub/';

/** A store in the browser's Cache API (persists across reloads; needs a secure context). Null where there is none. */
export async function browserCacheStore(): Promise<CacheStore | null> {
  if (typeof caches === 'undefined') return null;
  let cache: Cache;
  try {
    cache = await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
  const url = async (key: string) => `${CACHE_URL}${await sha256Hex(new TextEncoder().encode(key))}`;
  return {
    async read(key) {
      const res = await cache.match(await url(key));
      if (!res) return null;
      return { bytes: new Uint8Array(await res.arrayBuffer()), sha256: res.headers.get('x-sha256') ?? '' };
    },
    async write(key, bytes, sha256) {
      const body = new Blob([bytes as Uint8Array<ArrayBuffer>]);
      await cache.put(await url(key), new Response(body, { headers: { 'x-sha256': sha256, 'content-type': 'application/octet-stream' } }));
    },
    async remove(key) {
      await cache.delete(await url(key));
    },
  };
}
