/**
 * The command line's Hub cache folder (src/platform/hubCacheNode.ts) at the store level: node:crypto's sha256 is the
 * digest WebCrypto gives (entries written by either verify with the other), entries read back whole and aligned,
 * and a damaged file of any length (flipped byte, cut short, cut inside the digest, empty) reads as a miss and is
 * deleted, never as bytes.
 */
import { mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/engine/eval/suite';
import { dirCacheStore, nodeHubCache, nodeSha256Hex } from '../../src/platform/hubCacheNode';

const bytesOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 2654435761 + seed) >>> 24);

describe('Hub cache folder', () => {
  it('hashes as WebCrypto does', async () => {
    for (const n of [0, 1, 63, 64, 65, 100_000]) expect(await nodeSha256Hex(bytesOf(n, n))).toBe(await sha256Hex(bytesOf(n, n)));
  });

  it('reads entries back whole, in buffers of their own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-hubcache-node-'));
    const cache = nodeHubCache(dir);
    for (const n of [0, 5, 1 << 20]) {
      await cache.put(`k${n}`, bytesOf(n, 3));
      const got = await cache.get(`k${n}`);
      expect(got && Buffer.from(got).equals(Buffer.from(bytesOf(n, 3)))).toBe(true);
      expect(got!.byteOffset).toBe(0);
    }
    expect(await cache.get('absent')).toBeNull();
    // What the store holds is WebCrypto's digest of the bytes.
    const entry = await dirCacheStore(dir).read('k5');
    expect(entry!.sha256).toBe(await sha256Hex(bytesOf(5, 3)));
  });

  it.each([
    ['a flipped byte', (f: string) => { const raw = readFileSync(f); raw[raw.byteLength - 1]! ^= 1; writeFileSync(f, raw); }],
    ['cut short', (f: string) => truncateSync(f, 64 + 500)],
    ['cut inside the digest', (f: string) => truncateSync(f, 30)],
    ['empty', (f: string) => truncateSync(f, 0)],
  ] as const)('a file %s is a miss, and is deleted', async (_what, damage) => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-hubcache-node-'));
    const cache = nodeHubCache(dir);
    await cache.put('k', bytesOf(1000, 9));
    const [file] = readdirSync(dir);
    damage(join(dir, file!));
    expect(await cache.get('k')).toBeNull();
    expect(readdirSync(dir)).toEqual([]);
  });
});
