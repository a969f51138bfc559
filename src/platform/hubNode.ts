/**
 * The Hub from the command line: settings from the environment (HF_ENDPOINT, HF_TOKEN, MERGE_PLAYGROUND_CACHE) and
 * model arguments that are either local paths or Hub ids.
 */
import { existsSync } from 'node:fs';
import type { Model } from '../engine/io/model';
import { DEFAULT_ENDPOINT, listRepoFiles, openHubModel, openRepoFile, openRepoModel, resolveRevision, type HubModel, type HubOptions, type HubProgress, type RepoModelOptions } from './hub';
import { defaultCacheDir, nodeHubCache } from './hubCacheNode';
import { looksLikeHubId } from './hubIds';
import { openModelPath } from './nodeFiles';

/** Options for Hub calls from Node: endpoint and token from the environment, the on-disk cache (unless set to off). */
export function nodeHubOptions<T extends HubOptions>(env: Record<string, string | undefined> = process.env, extra: T = {} as T): HubOptions & T {
  const noCache = env.MERGE_PLAYGROUND_CACHE === 'off';
  return {
    endpoint: env.HF_ENDPOINT || DEFAULT_ENDPOINT,
    token: env.HF_TOKEN || null,
    cache: noCache ? null : nodeHubCache(defaultCacheDir(null, env)),
    ...extra,
  };
}

/** The environment's Hub settings bound into the calls evaluation suites read through (HubAccess in hubSuite.ts). */
export function nodeHubAccess(env: Record<string, string | undefined> = process.env, extra: HubOptions = {}) {
  const base = nodeHubOptions(env, extra);
  return {
    openRepoFile: (repo: string, revision: string | undefined, path: string, opts: HubOptions = {}) => openRepoFile(repo, revision, path, { ...base, ...opts }),
    openRepoModel: (repo: string, revision: string | undefined, opts: RepoModelOptions = {}) => openRepoModel(repo, revision, { ...base, ...opts }),
    listRepoFiles: (repo: string, revision: string | undefined, opts: HubOptions = {}) => listRepoFiles(repo, revision ?? 'main', { ...base, ...opts }),
    resolveRevision: (repo: string, revision: string | undefined, opts: HubOptions = {}) => resolveRevision(repo, revision, { ...base, ...opts }),
  };
}

/** Bytes as MB with one decimal. */
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** One progress line: "org/name@main: 45% of 27.0 MB, 5.2 MB/s, 3 s left". */
export function progressLine(label: string, p: HubProgress): string {
  const pct = p.totalBytes ? Math.floor((100 * p.doneBytes) / p.totalBytes) : 100;
  const rate = p.bytesPerSecond > 0 ? `, ${mb(p.bytesPerSecond)}/s` : '';
  const eta = p.etaSeconds === null ? '' : p.etaSeconds === 0 ? '' : `, ${Math.ceil(p.etaSeconds)} s left`;
  return `${label}: ${pct}% of ${mb(p.totalBytes)}${p.downloadedBytes < p.doneBytes ? ' (from the cache)' : rate}${eta}`;
}

/**
 * Opens a model argument: an existing local path (file or folder), or anything named like a file, from disk; else a Hub
 * id `org/name[@revision]`, downloaded now (into the cache) with progress lines to `log`. `prefix` keeps only tensors
 * whose names start with it.
 */
export async function openModelArg(arg: string, opts: { prefix?: string; log?: (line: string) => void; env?: Record<string, string | undefined>; signal?: AbortSignal } = {}): Promise<Model | HubModel> {
  const prefix = opts.prefix ?? '';
  // A missing file named like a path (dir/model.safetensors, ./x) is reported as a missing file, not looked up on the Hub.
  const pathLike = /\.(safetensors|json)$/i.test(arg) || /^[.~/\\]/.test(arg);
  if (existsSync(arg) || pathLike || !looksLikeHubId(arg)) return restrict(await openModelPath(arg, opts.signal), prefix);
  const log = opts.log ?? (() => undefined);
  let last = 0;
  const hubOpts: RepoModelOptions = nodeHubOptions(opts.env ?? process.env, {
    prefix: prefix || undefined,
    prefetch: true,
    signal: opts.signal,
    onRetry: (what, attempt, why) => log(`  ${what}: ${why}; retrying (${attempt})`),
    onProgress: (p) => {
      const now = Date.now();
      if (now - last < 1000 && p.doneBytes < p.totalBytes) return;
      last = now;
      log(`  ${progressLine(arg, p)}`);
    },
  });
  const model = await openHubModel(arg, hubOpts);
  log(`  ${arg}: commit ${model.hub.commit}${model.hub.revision !== (arg.split('@')[1] ?? 'main') ? ` (${model.hub.revision})` : ''}, ${model.tensors.size} tensors`);
  return model;
}

/** A local model restricted to the tensors under `prefix` (the whole model when it is empty). */
function restrict(model: Model, prefix: string): Model {
  if (!prefix) return model;
  const tensors = new Map([...model.tensors].filter(([name]) => name.startsWith(prefix)));
  if (!tensors.size) throw new Error(`${model.name}: no tensor name starts with ${JSON.stringify(prefix)} (${model.tensors.size} tensors in the model)`);
  return {
    ...model,
    tensors,
    readTensor: (name, range, signal, into) => (tensors.has(name) ? model.readTensor(name, range, signal, into) : Promise.reject(new Error(`${model.name}: no tensor named "${name}"`))),
  };
}

/** Where a model came from, for reports: Hub models pinned to their commit. */
export function modelSource(model: Model | HubModel): { name: string; repo?: string; revision?: string; commit?: string } {
  if ('hub' in model) return { name: model.name, repo: model.hub.repo, revision: model.hub.revision, commit: model.hub.commit };
  return { name: model.name };
}
