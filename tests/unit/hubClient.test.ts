/**
 * The Hub client against the local fake Hub: revision pins, sharded models, tensor-prefix selection, gated repos,
 * 404s, the safetensors conversion PR, config.json, and the network faults of issue 9 (5xx, timeouts, dropped
 * connections resumed by range, a file changed between reads), the cache (warm reload with no download, corrupt
 * entries re-fetched) and token secrecy.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/engine/errors';
import { fetchConfig, listRepoFiles, openHubModel, openRepoFile, openRepoModel, resolveRevision, type RepoModelOptions } from '../../src/platform/hub';
import { memoryStore, verifiedCache } from '../../src/platform/hubCache';
import { nodeHubCache } from '../../src/platform/hubCacheNode';
import { nodeHubAccess, nodeHubOptions, progressLine } from '../../src/platform/hubNode';
import { HubError } from '../../src/platform/hubErrors';
import { progressTracker, type HubProgress } from '../../src/platform/hubProgress';
import { makeModelBytes, type FixtureTensor } from '../helpers/safetensorsFixtures';
import { standardRepos, startFakeHub, type FakeHub } from '../helpers/fakeHub';
import { reliabilityCase } from '../helpers/reliability';

const fixtures = standardRepos();
let hub: FakeHub;
const RETRY = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2000 };
const opts = (extra: RepoModelOptions = {}): RepoModelOptions => ({ endpoint: hub.url, retry: RETRY, ...extra });

beforeAll(async () => {
  hub = await startFakeHub(fixtures.repos);
});
afterAll(async () => {
  await hub.close();
});
beforeEach(() => {
  hub.log.length = 0;
  hub.faults.length = 0;
});

/** Expects every tensor of `want` (restricted to `prefix`) to be in the model with the same bytes, and nothing else. */
async function expectTensors(model: { tensors: Map<string, unknown>; readTensor(n: string): Promise<Uint8Array> }, want: FixtureTensor[], prefix = '') {
  const selected = want.filter((t) => t.name.startsWith(prefix));
  expect([...model.tensors.keys()].sort()).toEqual(selected.map((t) => t.name).sort());
  for (const t of selected) expect(Buffer.from(await model.readTensor(t.name)).equals(Buffer.from(t.data)), t.name).toBe(true);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('revisions, listing, models', () => {
  it('resolves branches and tags to commits and pins them; a commit hash needs no lookup', async () => {
    const main = hub.commit('test-org/task-a', 'main');
    const v1 = hub.commit('test-org/task-a', 'v1');
    expect(main).not.toBe(v1);
    expect(await resolveRevision('test-org/task-a', 'main', opts())).toBe(main);
    expect(await resolveRevision('test-org/task-a', 'v1', opts())).toBe(v1);
    hub.log.length = 0;
    const pinned = await openRepoModel('test-org/task-a', v1, opts());
    expect(hub.log.filter((r) => r.path.includes('/revision/'))).toEqual([]);
    expect(pinned.hub.commit).toBe(v1);
    await expectTensors(pinned, fixtures.taskAv1);
    const latest = await openHubModel('test-org/task-a', opts());
    expect(latest.hub.commit).toBe(main);
    await expectTensors(latest, fixtures.taskA);
    // Every file request names the commit, never the branch: bytes of one model all come from one commit.
    expect(hub.fileRequests().every((r) => r.path.includes(main) || r.path.includes(v1))).toBe(true);
  });

  it('lists files and reads config.json', async () => {
    const files = await listRepoFiles('test-org/task-b', 'main', opts());
    expect(files.map((f) => f.path).sort()).toEqual(['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    expect(files.find((f) => f.path.endsWith('00001-of-00002.safetensors'))!.size).toBeGreaterThan(1000);
    expect(await fetchConfig('test-org/clip-base', 'main', opts())).toMatchObject({ model_type: 'clip' });
  });

  it('reads files of dataset repos by byte range', async () => {
    const path = 'data/test-00000-of-00001.parquet';
    const want = makeModelBytes(fixtures.base);
    const src = await openRepoFile('datasets/test-org/tiny-data', 'main', path, opts());
    expect(src.size).toBe(want.byteLength);
    expect(src.name).toBe(`datasets/test-org/tiny-data@main/${path}`);
    expect(Buffer.from(await src.read(40, 200)).equals(Buffer.from(want.subarray(40, 240)))).toBe(true);
    expect(hub.fileRequests().every((r) => r.path.startsWith('/lfs/dataset/test-org/tiny-data/'))).toBe(true);
    expect((await listRepoFiles('datasets/test-org/tiny-data', 'main', opts())).map((f) => f.path).sort()).toEqual(['README.md', path]);
    await expect(openRepoModel('datasets/test-org/tiny-data', 'main', opts())).rejects.toThrow(/has no safetensors weights/);
  });

  it('reads tensors in blocks: any slice, across block edges, from one download per block', async () => {
    const store = memoryStore();
    const m = await openRepoModel('test-org/task-b', 'main', opts({ blockBytes: 100, cache: verifiedCache(store) }));
    const t = fixtures.taskB.find((x) => x.name.endsWith('token_embedding.weight'))!;
    expect(t.data.byteLength).toBeGreaterThan(1000);
    for (const [start, count] of [[0, 1], [24, 2], [20, 30], [3, 250], [1000, 24]] as const) {
      const got = await m.readTensor(t.name, { start, count });
      expect(Buffer.from(got).equals(Buffer.from(t.data.subarray(start * 4, (start + count) * 4))), `${start}+${count}`).toBe(true);
    }
    hub.log.length = 0;
    expect(Buffer.from(await m.readTensor(t.name)).equals(Buffer.from(t.data))).toBe(true);
    // 25 elements (100 bytes) per block; every block is downloaded once, whatever the slices.
    const blocks = Math.ceil(t.data.byteLength / 100);
    const fetched = hub.fileRequests().length;
    expect(fetched).toBeLessThan(blocks);
    expect([...store.entries.keys()].filter((k) => k.includes('model-0000')).length).toBeGreaterThanOrEqual(blocks);
    await expect(m.readTensor(t.name, { start: 1020, count: 5 })).rejects.toThrow(/outside its 1024 elements/);
  });

  it('works where Content-Range is not exposed (cross-origin pages): size from a HEAD request', async () => {
    const hiding: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const headers = new Headers(res.headers);
      headers.delete('content-range');
      return new Response(res.body, { status: res.status, headers });
    };
    const m = await openRepoModel('test-org/task-a', 'v1', opts({ fetch: hiding }));
    await expectTensors(m, fixtures.taskAv1);
    expect(hub.log.some((r) => r.method === 'HEAD')).toBe(true);
  });

  it('opens a sharded model', async () => {
    const m = await openRepoModel('test-org/task-b', 'main', opts());
    expect(m.hub.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    await expectTensors(m, fixtures.taskB);
  });

  it('fetches only the byte ranges of the tensors under a prefix', async () => {
    const m = await openRepoModel('test-org/clip-base', 'main', opts({ prefix: 'vision_model.', prefetch: true }));
    const fileSize = makeModelBytes(fixtures.base).byteLength;
    const textBytes = fixtures.base.filter((t) => t.name.startsWith('text_model.')).reduce((a, t) => a + t.data.byteLength, 0);
    const sent = hub.fileRequests().reduce((a, r) => a + r.bytes, 0);
    expect(sent).toBeLessThanOrEqual(fileSize - textBytes + 1);
    // Prefetched bytes are kept (in memory when there is no cache): reading them again downloads nothing.
    await expectTensors(m, fixtures.base, 'vision_model.');
    expect(hub.fileRequests().reduce((a, r) => a + r.bytes, 0)).toBe(sent);
    expect(m.hub.bytes).toBe(fixtures.base.filter((t) => t.name.startsWith('vision_model.')).reduce((a, t) => a + t.data.byteLength, 0));
    await expect(openRepoModel('test-org/clip-base', 'main', opts({ prefix: 'audio.' }))).rejects.toThrow(/no tensor name starts with "audio\."/);
  });

  it('uses the safetensors conversion pull request of the converter bot, else says there are no safetensors', async () => {
    const m = await openRepoModel('test-org/pt-only', 'main', opts());
    expect(m.hub.revision).toBe('refs/pr/2');
    await expectTensors(m, fixtures.taskA);
    const e = await rejection(openRepoModel('test-org/no-weights', 'main', opts()));
    expect(e).toBeInstanceOf(HubError);
    expect((e as HubError).kind).toBe('no-safetensors');
    expect(e.message).toContain('test-org/no-weights@main has no safetensors weights');
    expect(e.message).toContain('pytorch_model.bin');
  });

  it('maps 404s to errors naming the repo, the revision or the file', async () => {
    let e = await rejection(openRepoModel('test-org/missing', 'main', opts()));
    expect((e as HubError).kind).toBe('not-found');
    expect(e.message).toContain('test-org/missing');
    e = await rejection(openRepoModel('test-org/task-a', 'v9', opts()));
    expect(e.message).toMatch(/test-org\/task-a@v9: not found/);
    e = await rejection(openRepoFile('test-org/task-a', 'main', 'tokenizer.json', opts()));
    expect(e.message).toMatch(/test-org\/task-a@main\/tokenizer\.json: not found/);
    await expect(openHubModel('not an id', opts())).rejects.toThrow(/not a Hub repo id/);
  });
});

describe('gated repos and tokens', () => {
  it('without a token: 401 naming the repo; with a wrong one: 403; with the right one: the model', async () => {
    let e = await rejection(openRepoModel('test-org/gated-task', 'main', opts()));
    expect((e as HubError).kind).toBe('unauthorized');
    expect(e.message).toMatch(/test-org\/gated-task.*gated or private/);
    e = await rejection(openRepoModel('test-org/gated-task', 'main', opts({ token: 'hf_WrongToken123456789' })));
    expect((e as HubError).kind).toBe('forbidden');
    expect(e.message).not.toContain('hf_WrongToken123456789');
    hub.log.length = 0;
    const m = await openRepoModel('test-org/gated-task', 'main', opts({ token: fixtures.token }));
    await expectTensors(m, fixtures.gated);
    expect(hub.log.filter((r) => r.path.includes('gated-task') && !r.path.startsWith('/lfs/')).every((r) => r.auth !== 'none')).toBe(true);
  });

  it('never puts the token in a URL, an error, a retry message or a progress report', async () => {
    const token = fixtures.token;
    const seen: string[] = [];
    const echoing: typeof fetch = async (input, init) => {
      // A proxy that fails once with the request headers in its message.
      const auth = new Headers(init?.headers).get('authorization');
      if (auth && seen.length === 0) {
        seen.push('thrown');
        throw new Error(`proxy refused ${String(input)} with ${auth}`);
      }
      return fetch(input, init);
    };
    const progress: HubProgress[] = [];
    const m = await openRepoModel('test-org/gated-task', 'main', opts({ token, fetch: echoing, onRetry: (w, n, why) => seen.push(`${w} ${n} ${why}`), onProgress: (p) => progress.push(p), prefetch: true }));
    expect(m.tensors.size).toBeGreaterThan(0);
    hub.faults.push({ kind: 'status', status: 503, times: 9 });
    const e = await rejection(openRepoFile('test-org/gated-task', 'main', 'model.safetensors', opts({ token, retry: { ...RETRY, attempts: 2 } })));
    const texts = [...seen, e.message, e.stack ?? '', JSON.stringify(progress), JSON.stringify(m.hub), m.name, ...hub.log.map((r) => r.url)];
    expect(seen.length).toBeGreaterThan(1);
    for (const t of texts) expect(t).not.toContain(token);
    expect(texts.join('\n')).not.toMatch(/hf_[A-Za-z0-9]{8,}/);
    await expect(openRepoModel('test-org/gated-task', 'main', opts({ token: 'not-a-token secret' }))).rejects.toThrow(/must start with hf_/);
  });
});

describe('network faults', () => {
  reliabilityCase('network-faults', 'HTTP 5xx on API and file requests is retried with backoff', async () => {
    const retries: string[] = [];
    hub.faults.push({ kind: 'status', status: 502, times: 2, match: (p) => p.includes('/revision/') });
    hub.faults.push({ kind: 'status', status: 503, times: 3 });
    const m = await openRepoModel('test-org/task-a', 'main', opts({ onRetry: (w, n, why) => retries.push(`${n}:${why}`) }));
    await expectTensors(m, fixtures.taskA);
    expect(retries.filter((r) => r.endsWith('HTTP 502'))).toHaveLength(2);
    expect(retries.filter((r) => r.endsWith('HTTP 503'))).toHaveLength(3);
    return 5;
  });

  reliabilityCase('network-faults', 'persistent 5xx gives up after the bounded number of tries', async () => {
    hub.faults.push({ kind: 'status', status: 500, times: 100 });
    const e = await rejection(openRepoModel('test-org/task-a', 'main', opts({ retry: { ...RETRY, attempts: 3 } })));
    expect(e).toBeInstanceOf(HubError);
    expect(e.message).toMatch(/test-org\/task-a@main\/model\.safetensors: HTTP 500/);
    expect(hub.log.filter((r) => r.status === 500).length).toBe(3);
  });

  reliabilityCase('network-faults', 'a connection dropped mid-body resumes with a Range request from the last byte', async () => {
    const bytes = makeModelBytes(fixtures.taskA);
    const src = await openRepoFile('test-org/task-a', 'main', 'model.safetensors', opts());
    hub.log.length = 0;
    hub.faults.push({ kind: 'drop', afterBytes: 700, times: 2 });
    const got = await src.read(100, bytes.byteLength - 100);
    expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(100)))).toBe(true);
    const ranges = hub.fileRequests().filter((r) => r.path.startsWith('/lfs/')).map((r) => r.range);
    expect(ranges).toEqual([`bytes=100-${bytes.byteLength - 1}`, `bytes=800-${bytes.byteLength - 1}`, `bytes=1500-${bytes.byteLength - 1}`]);
    return 2;
  });

  reliabilityCase('network-faults', 'a server that does not answer in time is retried', async () => {
    hub.faults.push({ kind: 'delay', ms: 600, times: 1 });
    const m = await openRepoModel('test-org/task-a', 'main', opts({ retry: { ...RETRY, timeoutMs: 150 } }));
    await expectTensors(m, fixtures.taskA);
  });

  reliabilityCase('network-faults', 'a file that changes between header and body reads fails clearly and caches nothing', async () => {
    const store = memoryStore();
    const m = await openRepoModel('test-org/task-b', 'main', opts({ cache: verifiedCache(store) }));
    const shard = 'model-00001-of-00002.safetensors';
    const before = store.entries.size;
    const changed = makeModelBytes(fixtures.taskB.filter((_, j) => j % 2 === 0).map((t) => ({ ...t, data: t.data.map((b) => b ^ 1) })));
    hub.replaceFile('test-org/task-b', 'main', shard, changed);
    try {
      const name = fixtures.taskB[0]!.name;
      const e = await rejection(m.readTensor(name));
      expect((e as HubError).kind).toBe('changed');
      expect(e.message).toContain(`test-org/task-b@main/${shard}: the file changed on the server`);
      expect(store.entries.size).toBe(before);
    } finally {
      hub.replaceFile('test-org/task-b', 'main', shard, standardRepos().repos.find((r) => r.id === 'test-org/task-b')!.revisions.main![shard]!);
    }
  });

  reliabilityCase('network-faults', 'cancelling during a backoff wait stops at once', async () => {
    hub.faults.push({ kind: 'status', status: 503, times: 100 });
    const controller = new AbortController();
    const t0 = Date.now();
    setTimeout(() => controller.abort(), 100);
    const e = await rejection(openRepoModel('test-org/task-a', 'main', opts({ signal: controller.signal, retry: { ...RETRY, baseDelayMs: 10_000, maxDelayMs: 10_000 } })));
    expect(e).toBeInstanceOf(CancelledError);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('cache', () => {
  it('a warm reload of a pinned model makes no request at all; a branch costs only the revision lookup', async () => {
    const store = memoryStore();
    const cache = verifiedCache(store);
    const commit = hub.commit('test-org/task-b', 'main');
    const first = await openRepoModel('test-org/task-b', commit, opts({ cache, prefetch: true }));
    expect(hub.fileRequests().length).toBeGreaterThan(0);
    hub.log.length = 0;
    const again = await openRepoModel('test-org/task-b', commit, opts({ cache, prefetch: true }));
    await expectTensors(again, fixtures.taskB);
    expect(hub.log).toEqual([]);
    await openRepoModel('test-org/task-b', 'main', opts({ cache, prefetch: true }));
    expect(hub.log.map((r) => r.path)).toEqual(['/api/models/test-org/task-b/revision/main']);
    expect(first.hub.commit).toBe(commit);
  });

  reliabilityCase('network-faults', 'a corrupt cache entry is deleted and downloaded again', async () => {
    const store = memoryStore();
    const cache = verifiedCache(store);
    await openRepoModel('test-org/task-a', 'main', opts({ cache, prefetch: true }));
    let corrupted = 0;
    for (const entry of store.entries.values()) {
      if (entry.bytes.byteLength > 100) {
        entry.bytes[7] = entry.bytes[7]! ^ 0xff;
        corrupted++;
      }
    }
    expect(corrupted).toBeGreaterThan(0);
    hub.log.length = 0;
    const m = await openRepoModel('test-org/task-a', 'main', opts({ cache, prefetch: true }));
    await expectTensors(m, fixtures.taskA);
    expect(hub.fileRequests().filter((r) => r.range && r.range !== 'bytes=0-0').length).toBe(corrupted);
    hub.log.length = 0;
    await openRepoModel('test-org/task-a', 'main', opts({ cache, prefetch: true }));
    expect(hub.fileRequests()).toEqual([]);
    return corrupted;
  });

  it('the Node folder cache survives a new process-level cache object and repairs corrupt files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-hubcache-'));
    const commit = hub.commit('test-org/clip-base', 'main');
    await openRepoModel('test-org/clip-base', commit, opts({ cache: nodeHubCache(dir), prefetch: true, prefix: 'vision_model.' }));
    const files = readdirSync(dir);
    expect(files.length).toBeGreaterThan(3);
    expect(files.some((f) => f.endsWith('.tmp'))).toBe(false);
    hub.log.length = 0;
    const m = await openRepoModel('test-org/clip-base', commit, opts({ cache: nodeHubCache(dir), prefetch: true, prefix: 'vision_model.' }));
    expect(hub.log).toEqual([]);
    const biggest = files.map((f) => join(dir, f)).sort((a, b) => readFileSync(b).byteLength - readFileSync(a).byteLength)[0]!;
    const raw = readFileSync(biggest);
    raw[raw.byteLength - 1] = raw[raw.byteLength - 1]! ^ 0xff;
    writeFileSync(biggest, raw);
    const repaired = await openRepoModel('test-org/clip-base', commit, opts({ cache: nodeHubCache(dir), prefetch: true, prefix: 'vision_model.' }));
    expect(hub.fileRequests().filter((r) => r.range !== 'bytes=0-0').length).toBe(1);
    await expectTensors(repaired, fixtures.base, 'vision_model.');
    expect(m.hub.bytes).toBe(repaired.hub.bytes);
  });
});

describe('progress', () => {
  it('reports bytes done of the total, a rate and the time left', async () => {
    const reports: HubProgress[] = [];
    const m = await openRepoModel('test-org/task-b', 'main', opts({ prefetch: true, onProgress: (p) => reports.push(p) }));
    const last = reports.at(-1)!;
    expect(last.doneBytes).toBe(m.hub.bytes);
    expect(last.totalBytes).toBe(m.hub.bytes);
    expect(last.downloadedBytes).toBeGreaterThanOrEqual(m.hub.bytes);
    expect(last.etaSeconds).toBe(0);
    let t = 0;
    const seen: HubProgress[] = [];
    const track = progressTracker(1000, (p) => seen.push(p), 0, () => t);
    track.received(100);
    t = 1000;
    track.received(100);
    track.completed(200);
    expect(seen.at(-1)).toMatchObject({ doneBytes: 200, downloadedBytes: 200, bytesPerSecond: 200, etaSeconds: 4 });
  });
});

describe('Node settings', () => {
  it('take endpoint, token and cache folder from the environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-hubenv-'));
    const env = { HF_ENDPOINT: hub.url, HF_TOKEN: fixtures.token, MERGE_PLAYGROUND_CACHE: dir };
    expect(nodeHubOptions({ ...env, MERGE_PLAYGROUND_CACHE: 'off' }).cache).toBeNull();
    const access = nodeHubAccess(env, { retry: RETRY });
    const m = await access.openRepoModel('test-org/gated-task', undefined, { prefetch: true });
    await expectTensors(m, fixtures.gated);
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    const config = await access.openRepoFile('test-org/task-a', 'v1', 'config.json');
    expect(new TextDecoder().decode(await config.read(0, config.size))).toContain('CLIPModel');
    expect(progressLine('org/x', { file: '', doneBytes: 5e6, totalBytes: 2e7, downloadedBytes: 5e6, bytesPerSecond: 2.5e6, etaSeconds: 6 })).toBe('org/x: 25% of 20.0 MB, 2.5 MB/s, 6 s left');
  });
});
