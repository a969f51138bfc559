/**
 * Models and files from the Hugging Face Hub (or any server speaking its API: `endpoint`).
 *
 * The two entry points other features build on:
 * - `openRepoFile(repo, revision, path, opts)`: one file of a repo as a ByteSource read with range requests (retried,
 *   resumed, ETag-checked, cached per byte range). Suites read parquet row groups and tokenizer files through it.
 * - `openRepoModel(repo, revision, opts)`: a repo's safetensors model (single or sharded), optionally only the tensors
 *   under a name prefix (e.g. `vision_model.` of a full CLIP checkpoint: headers are read first, then only those
 *   tensors' bytes are fetched). Without safetensors on the revision, the Hub's conversion pull request is used.
 *
 * `repo` is `org/name` (or `datasets/org/name`); `revision` a branch, tag, `refs/pr/N` or commit (undefined: main). A branch or tag is
 * resolved to its commit hash first (`resolveRevision`), and everything downloaded is keyed by that commit, so a
 * revision pin is exact and cached bytes never go stale. The access token is only ever sent in an Authorization
 * header; every error leaving this module is redacted (hubErrors.ts).
 */
import type { ByteSource } from '../engine/io/byteSource';
import { FormatError, throwIfAborted } from '../engine/errors';
import { openShardedModel, openSingleFileModel, type Model } from '../engine/io/model';
import { cacheKey, memoryStore, verifiedCache, type HubCache } from './hubCache';
import { HubError, redact, redactError, statusError } from './hubErrors';
import { formatHubId, isCommitHash, parseHubId, type HubRepoId } from './hubIds';
import { blockReader } from './hubBlocks';
import { progressTracker, type HubProgress } from './hubProgress';
import { DEFAULT_RETRY, fetchWithRetry, openRemoteFile, retryingFetch, type RetryPolicy, type Transport } from './hubRange';

// @huggingface/hub loads on the first Hub request: the page's first load (the demo) does without it.
const hubLibrary = () => import('@huggingface/hub');

export type { HubProgress } from './hubProgress';
export type { HubCache } from './hubCache';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Options shared by every Hub call. */
export interface HubOptions {
  /** Hub URL; default https://huggingface.co (Node: HF_ENDPOINT, see hubNode.ts). */
  endpoint?: string;
  /** Access token for gated or private repos (starts with hf_). Kept in memory, sent only as Authorization. */
  token?: string | null;
  fetch?: typeof fetch;
  /** Where downloaded ranges are kept; null or absent: nothing is cached. */
  cache?: HubCache | null;
  retry?: Partial<RetryPolicy>;
  /** Cancels every request and every wait. */
  signal?: AbortSignal;
  onProgress?: (p: HubProgress) => void;
  /** Told about each retry (for logs); the text names the file and the failure only. */
  onRetry?: (what: string, attempt: number, why: string) => void;
}

/** Options of openRepoModel. */
export interface RepoModelOptions extends HubOptions {
  /** Keep only tensors whose name starts with this (e.g. "vision_model."). */
  prefix?: string;
  /** Download every selected tensor now (into the cache), reporting progress; otherwise bytes are fetched on use. */
  prefetch?: boolean;
  /** Unit of download and caching inside a tensor (default 16 MiB). */
  blockBytes?: number;
}

/** Where a Hub model came from; what a share link or export pins. */
export interface HubSource {
  endpoint: string;
  repo: string;
  /** The revision asked for (a conversion PR's ref when that was used instead). */
  revision: string;
  commit: string;
  /** The repo files the model was read from. */
  files: string[];
  /** Bytes of the selected tensors. */
  bytes: number;
}

/** A Model read from the Hub. */
export interface HubModel extends Model {
  readonly hub: HubSource;
}

/** One file of a repo listing. */
export interface RepoFile {
  path: string;
  size: number;
}

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
/** Title and author of the pull request the Hub's safetensors converter opens (what transformers looks for too). */
const CONVERSION_TITLE = 'Adding `safetensors` variant of this model';
const CONVERSION_BOT = 'SFconvertbot';
const MAX_JSON_BYTES = 16 * 1024 * 1024;

/** What one call works with: endpoint, transport (auth, retries, cancellation), cache. */
interface Session {
  endpoint: string;
  token: string | null;
  transport: Transport;
  cache: HubCache | null;
  opts: HubOptions;
}

function session(opts: HubOptions): Session {
  const endpoint = (opts.endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/]+/.test(endpoint)) throw new HubError('bad-response', `Hub endpoint ${JSON.stringify(endpoint)} is not an http(s) URL`);
  const token = opts.token?.trim() || null;
  if (token && !/^hf_[A-Za-z0-9]+$/.test(token)) throw new HubError('unauthorized', 'the access token is not a Hub token (it must start with hf_ and hold only letters and digits)');
  return {
    endpoint,
    token,
    cache: opts.cache ?? null,
    opts,
    transport: {
      fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      retry: { ...DEFAULT_RETRY, ...opts.retry },
      signal: opts.signal,
      // A failure's text can quote request headers (a proxy's message): redacted like errors.
      onRetry: opts.onRetry && ((what, attempt, why) => opts.onRetry!(redact(what, token), attempt, redact(why, token))),
    },
  };
}

/** Runs `body`, redacting the token from anything it throws. */
async function guarded<T>(opts: HubOptions, body: (s: Session) => Promise<T>): Promise<T> {
  const token = opts.token?.trim() || null;
  try {
    return await body(session(opts));
  } catch (e) {
    throw redactError(e, token);
  }
}

function repoOf(repo: string): HubRepoId {
  if (repo.includes('@')) throw new Error(`${JSON.stringify(repo)}: give the revision separately, not after "@"`);
  return parseHubId(repo);
}

const repoLabel = (id: HubRepoId) => formatHubId({ ...id, revision: 'main' });

/** Maps an @huggingface/hub error (it has a statusCode) to a HubError naming the repo. */
function apiError(e: unknown, what: string, id: HubRepoId): Error {
  const status = (e as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number') return statusError(status, what, repoLabel(id));
  return e as Error;
}

/** The commit hash a revision points to now (a commit hash is returned as is, with no request). */
export function resolveRevision(repo: string, revision: string | undefined, opts: HubOptions = {}): Promise<string> {
  return guarded(opts, (s) => resolveIn(s, repoOf(repo), revision ?? 'main'));
}

async function resolveIn(s: Session, id: HubRepoId, revision: string): Promise<string> {
  if (isCommitHash(revision)) return revision;
  throwIfAborted(s.opts.signal);
  const what = `${repoLabel(id)}@${revision}`;
  const params = { name: id.name, revision, hubUrl: s.endpoint, accessToken: s.token ?? undefined, fetch: retryingFetch(s.transport, what), additionalFields: ['sha'] as ['sha'] };
  let sha: unknown;
  try {
    const { datasetInfo, modelInfo } = await hubLibrary();
    sha = id.type === 'dataset' ? (await datasetInfo(params)).sha : (await modelInfo(params)).sha;
  } catch (e) {
    throw apiError(e, what, id);
  }
  if (typeof sha !== 'string' || !isCommitHash(sha)) throw new HubError('bad-response', `${what}: the Hub did not say which commit this revision is`);
  return sha;
}

/** Every file of a repo at a revision (recursive). The listing of a commit is cached like file bytes. */
export function listRepoFiles(repo: string, revision: string | undefined, opts: HubOptions = {}): Promise<RepoFile[]> {
  return guarded(opts, async (s) => {
    const id = repoOf(repo);
    return listIn(s, id, await resolveIn(s, id, revision ?? 'main'));
  });
}

async function listIn(s: Session, id: HubRepoId, commit: string): Promise<RepoFile[]> {
  const key = cacheKey({ endpoint: s.endpoint, repo: repoLabel(id), commit, path: '/tree', offset: 0, length: 0 });
  const cached = await s.cache?.get(key);
  if (cached) return JSON.parse(new TextDecoder().decode(cached)) as RepoFile[];
  const what = `${repoLabel(id)}@${commit.slice(0, 12)}`;
  const files: RepoFile[] = [];
  try {
    const repo = { type: id.type, name: id.name } as const;
    const { listFiles } = await hubLibrary();
    for await (const f of listFiles({ repo, revision: commit, recursive: true, hubUrl: s.endpoint, accessToken: s.token ?? undefined, fetch: retryingFetch(s.transport, what) })) {
      if (f.type === 'file') files.push({ path: f.path, size: f.lfs?.size ?? f.size });
    }
  } catch (e) {
    throw apiError(e, what, id);
  }
  await s.cache?.put(key, new TextEncoder().encode(JSON.stringify(files)));
  return files;
}

/** The resolve URL of a file at a commit (path segments escaped). */
function resolveUrl(s: Session, id: HubRepoId, commit: string, path: string): string {
  const file = path.split('/').map(encodeURIComponent).join('/');
  return `${s.endpoint}/${id.type === 'dataset' ? 'datasets/' : ''}${id.name}/resolve/${commit}/${file}`;
}

/**
 * A repo file as a ByteSource at a known commit. Reads are cached by exact byte range; the size and ETag are cached
 * too, so a file whose ranges are all cached is read with no request at all. `name` is what errors call it.
 */
async function fileAt(s: Session, id: HubRepoId, commit: string, path: string, name: string, onReceived?: (n: number) => void): Promise<ByteSource> {
  const base = { endpoint: s.endpoint, repo: repoLabel(id), commit, path };
  const sizeKey = cacheKey({ ...base, offset: -1, length: 0 });
  let size: number | null = null;
  const known = await s.cache?.get(sizeKey);
  if (known) size = Number(new TextDecoder().decode(known));
  let remote: Promise<ByteSource> | null = null;
  const open = () =>
    (remote ??= openRemoteFile(s.transport, resolveUrl(s, id, commit, path), name, repoLabel(id), onReceived).then(async (r) => {
      if (size !== null && r.source.size !== size) {
        throw new HubError('changed', `${name}: the file is ${r.source.size} bytes on the server, but ${size} bytes in the cache for the same commit`);
      }
      await s.cache?.put(sizeKey, new TextEncoder().encode(String(r.source.size)));
      return r.source;
    }).catch((e: unknown) => {
      // A failed open is tried again on the next read, not remembered for the model's lifetime.
      remote = null;
      throw e;
    }));
  if (size === null) size = (await open()).size;
  const fileSize = size;
  return {
    name,
    size: fileSize,
    async read(offset, length, signal) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > fileSize) {
        throw new RangeError(`${name}: read of ${length} bytes at ${offset} is outside the file (${fileSize} bytes)`);
      }
      if (length === 0) return new Uint8Array(0);
      const key = cacheKey({ ...base, offset, length });
      const hit = await s.cache?.get(key);
      if (hit && hit.byteLength === length) return hit;
      const bytes = await (await open()).read(offset, length, signal);
      await s.cache?.put(key, bytes);
      return bytes;
    },
  };
}

/** A file of a repo as a ByteSource (range reads, retries, resume, cache). */
export function openRepoFile(repo: string, revision: string | undefined, path: string, opts: HubOptions = {}): Promise<ByteSource> {
  return guarded(opts, async (s) => {
    const id = repoOf(repo);
    const rev = revision ?? 'main';
    const commit = await resolveIn(s, id, rev);
    return redactedSource(await fileAt(s, id, commit, path, `${repoLabel(id)}@${rev}/${path}`), s.token);
  });
}

/** A JSON file of a repo (e.g. config.json), parsed. */
export function fetchRepoJson(repo: string, revision: string | undefined, path: string, opts: HubOptions = {}): Promise<unknown> {
  return guarded(opts, async (s) => {
    const src = await openRepoFile(repo, revision, path, opts);
    if (src.size > MAX_JSON_BYTES) throw new FormatError(src.name, `${src.size} bytes is too large for a JSON file (limit ${MAX_JSON_BYTES})`);
    const bytes = await src.read(0, src.size, s.opts.signal);
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (e) {
      throw new FormatError(src.name, `not valid UTF-8 JSON: ${e instanceof RangeError ? 'it is nested too deeply' : (e as Error).message}`);
    }
  });
}

/** A repo's config.json. */
export function fetchConfig(repo: string, revision: string | undefined, opts: HubOptions = {}): Promise<unknown> {
  return fetchRepoJson(repo, revision, 'config.json', opts);
}

/**
 * The `refs/pr/N` of the open safetensors conversion pull request of a repo (the one the Hub's converter bot opens),
 * or null. The discussions API lists newest first; the newest matching one wins.
 */
async function findConversion(s: Session, id: HubRepoId): Promise<string | null> {
  const what = `${repoLabel(id)} discussions`;
  for (let page = 0; page < 20; page++) {
    const res = await fetchWithRetry(s.transport, `${s.endpoint}/api/models/${id.name}/discussions?p=${page}`, { headers: { accept: 'application/json' } }, what);
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      if (res.status === 404) return null;
      throw statusError(res.status, what, repoLabel(id));
    }
    const body = (await res.json().catch(() => null)) as { discussions?: unknown[]; count?: number; start?: number } | null;
    const list = Array.isArray(body?.discussions) ? body.discussions : [];
    for (const d of list as { num?: unknown; title?: unknown; status?: unknown; isPullRequest?: unknown; author?: { name?: unknown } }[]) {
      if (d.isPullRequest === true && d.status === 'open' && d.title === CONVERSION_TITLE && d.author?.name === CONVERSION_BOT && Number.isInteger(d.num)) {
        return `refs/pr/${d.num as number}`;
      }
    }
    const seen = (body?.start ?? page * list.length) + list.length;
    if (!list.length || typeof body?.count !== 'number' || seen >= body.count) return null;
  }
  return null;
}

/** Which safetensors file(s) of a listing hold the model. */
function pickWeights(files: RepoFile[]): typeof SINGLE | typeof INDEX | null {
  if (files.some((f) => f.path === SINGLE)) return SINGLE;
  if (files.some((f) => f.path === INDEX)) return INDEX;
  return null;
}

/** Opens a repo's safetensors model; see the module comment. */
export function openRepoModel(repo: string, revision: string | undefined, opts: RepoModelOptions = {}): Promise<HubModel> {
  return guarded(opts, async (s) => {
    const id = repoOf(repo);
    let rev = revision ?? 'main';
    let commit = await resolveIn(s, id, rev);
    let files = await listIn(s, id, commit);
    let weights = pickWeights(files);
    if (!weights && id.type === 'model') {
      const pr = await findConversion(s, id);
      if (pr) {
        rev = pr;
        commit = await resolveIn(s, id, pr);
        files = await listIn(s, id, commit);
        weights = pickWeights(files);
      }
    }
    if (!weights) {
      const others = files.filter((f) => /\.(bin|pt|pth|ckpt|h5|msgpack|safetensors)$/.test(f.path)).map((f) => f.path);
      throw new HubError(
        'no-safetensors',
        `${repoLabel(id)}@${revision ?? 'main'} has no safetensors weights (${SINGLE} or ${INDEX})${others.length ? `, only ${others.slice(0, 5).join(', ')}` : ''}, and no open safetensors conversion pull request by ${CONVERSION_BOT}: convert the model to safetensors first`,
      );
    }
    // Prefetched bytes must be kept somewhere: in memory when no cache is configured.
    const kept = opts.prefetch && !s.cache ? { ...s, cache: verifiedCache(memoryStore()) } : s;
    return openModelAt(kept, id, rev, commit, weights, opts);
  });
}

async function openModelAt(s: Session, id: HubRepoId, revision: string, commit: string, weights: string, opts: RepoModelOptions): Promise<HubModel> {
  const label = `${repoLabel(id)}@${revision}`;
  // The total is known once the headers are read; until then only network bytes are counted.
  let track = progressTracker(0, undefined);
  const open = (path: string) => fileAt(s, id, commit, path, `${label}/${path}`, (n) => track.received(n)).then((src) => redactedSource(src, s.token));
  const model =
    weights === INDEX ? await openShardedModel(label, await open(INDEX), (shard) => open(shard), opts.signal) : await openSingleFileModel(label, await open(SINGLE), opts.signal);

  const prefix = opts.prefix ?? '';
  const tensors = new Map([...model.tensors].filter(([name]) => name.startsWith(prefix)));
  if (!tensors.size) throw new FormatError(label, `no tensor name starts with ${JSON.stringify(prefix)} (${model.tensors.size} tensors in the model)`);
  const bytes = [...tensors.values()].reduce((a, t) => a + t.info.end - t.info.begin, 0);
  const downloaded = track.snapshot().downloadedBytes;
  track = progressTracker(bytes, opts.onProgress);
  if (downloaded) track.received(downloaded);

  const blocks = blockReader(label, tensors, () => track, opts.blockBytes);
  const hubModel: HubModel = {
    // Pinned: merged files and reports record the exact commit that was read.
    name: `${repoLabel(id)}@${commit}`,
    files: model.files,
    tensors,
    metadata: model.metadata,
    readTensor: (name, range, signal, into) => blocks.read(name, range, signal, into),
    hub: { endpoint: s.endpoint, repo: repoLabel(id), revision, commit, files: model.files.map((f) => f.slice(label.length + 1)), bytes },
  };
  if (opts.prefetch) {
    for (const name of tensors.keys()) {
      throwIfAborted(opts.signal);
      await blocks.prefetch(name, opts.signal);
    }
  }
  return hubModel;
}

/** A source whose errors are redacted (reads happen long after the call that opened it). */
function redactedSource(src: ByteSource, token: string | null): ByteSource {
  return {
    name: src.name,
    size: src.size,
    read: (offset, length, signal) => src.read(offset, length, signal).catch((e: unknown) => Promise.reject(redactError(e, token))),
  };
}

/** Opens `org/name[@revision]` (the id as a user types it). */
export function openHubModel(id: string, opts: RepoModelOptions = {}): Promise<HubModel> {
  let parsed: HubRepoId;
  try {
    parsed = parseHubId(id);
  } catch (e) {
    return Promise.reject(e);
  }
  return openRepoModel(repoLabel(parsed), parsed.revision, opts);
}
