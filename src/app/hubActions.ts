/**
 * Opening Hub models in the page: each open is a job with progress (bytes, rate, time left) and a cancel button;
 * the opened model joins the page's models as the base or a fine-tuned model. Bytes are cached in the browser's
 * Cache API (checksummed), so a reload downloads nothing again. The access token lives in this module's memory, and in
 * sessionStorage only when the user asks to remember it for the tab; it is never in the app store, a link or an export.
 */
import { createStore } from 'zustand/vanilla';
import { CancelledError } from '../engine/errors';
import { DEFAULT_ENDPOINT, listRepoFiles, openHubModel, openRepoFile, openRepoModel, resolveRevision, type HubOptions, type HubProgress, type RepoModelOptions } from '../platform/hub';
import { browserCacheStore, memoryStore, verifiedCache, type HubCache } from '../platform/hubCache';
import { parseHubId } from '../platform/hubIds';
import { addModels, registerModel, useAsBase } from './actions';

/** One model being opened (or opened, failed, cancelled). */
export interface HubJob {
  id: number;
  /** The id as typed (org/name[@revision]). */
  repo: string;
  role: 'base' | 'model';
  state: 'opening' | 'done' | 'error' | 'cancelled';
  progress: HubProgress | null;
  message: string | null;
}

export interface HubState {
  endpoint: string;
  /** Only tensors whose names start with this are opened (e.g. "vision_model."); empty for all. */
  prefix: string;
  hasToken: boolean;
  rememberToken: boolean;
  jobs: HubJob[];
}

const TOKEN_KEY = 'merge-playground.hub-token';

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

let token: string | null = storedToken();
const controllers = new Map<number, AbortController>();
let nextJob = 1;
let cache: Promise<HubCache> | null = null;

export const hubStore = createStore<HubState>()(() => ({ endpoint: DEFAULT_ENDPOINT, prefix: '', hasToken: token !== null, rememberToken: token !== null, jobs: [] }));

const patchJob = (id: number, patch: Partial<HubJob>) => hubStore.setState((s) => ({ jobs: s.jobs.map((j) => (j.id === id ? { ...j, ...patch } : j)) }));

/** The Hub URL; must be http(s). Returns an error message, or null when accepted. */
export function setHubEndpoint(value: string): string | null {
  const url = value.trim().replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(url)) return `${JSON.stringify(value)} is not an http(s) URL`;
  hubStore.setState({ endpoint: url });
  return null;
}

export function setHubPrefix(prefix: string): void {
  hubStore.setState({ prefix });
}

/** Sets (or, with an empty value, clears) the access token; `remember` keeps it in this tab's sessionStorage. */
export function setHubToken(value: string, remember: boolean): void {
  token = value.trim() || null;
  try {
    if (token && remember) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the token stays in memory only.
  }
  hubStore.setState({ hasToken: token !== null, rememberToken: remember && token !== null });
}

/** The browser cache (Cache API), or memory where the page has none (e.g. not a secure context). */
/** The page's verified Hub download cache (Cache API, or memory where the browser has none). */
export function hubCache(): Promise<HubCache> {
  cache ??= browserCacheStore().then((store) => verifiedCache(store ?? memoryStore()));
  return cache;
}

/** Opens `id` from the Hub and makes it the base or adds it as a fine-tuned model. */
export async function openFromHub(id: string, role: HubJob['role']): Promise<void> {
  const job = nextJob++;
  const controller = new AbortController();
  controllers.set(job, controller);
  const repo = id.trim();
  hubStore.setState((s) => ({ jobs: [...s.jobs.filter((j) => j.state === 'opening' || j.state === 'error'), { id: job, repo, role, state: 'opening', progress: null, message: null }] }));
  try {
    parseHubId(repo);
    const { endpoint, prefix } = hubStore.getState();
    const model = await openHubModel(repo, {
      endpoint,
      token,
      cache: await hubCache(),
      prefix: prefix.trim() || undefined,
      prefetch: true,
      signal: controller.signal,
      onProgress: (progress) => patchJob(job, { progress }),
    });
    if (controller.signal.aborted) throw new CancelledError();
    const entry = registerModel(model, model.hub.bytes, `${repo} (${model.hub.commit.slice(0, 7)})`);
    if (role === 'base') useAsBase(entry);
    else addModels([entry]);
    patchJob(job, { state: 'done', message: null });
  } catch (e) {
    const cancelled = e instanceof CancelledError || controller.signal.aborted;
    patchJob(job, { state: cancelled ? 'cancelled' : 'error', message: cancelled ? 'Cancelled.' : (e as Error).message });
  } finally {
    controllers.delete(job);
  }
}

/** Cancels an open in progress: requests and retry waits stop at once; nothing is added. */
export function cancelHubJob(id: number): void {
  controllers.get(id)?.abort();
}

/** Removes a finished job from the list. */
export function dismissHubJob(id: number): void {
  hubStore.setState((s) => ({ jobs: s.jobs.filter((j) => j.id !== id || j.state === 'opening') }));
}

/** The page's Hub settings (endpoint, token, browser cache) bound into the two calls evaluation suites read through. */
export async function pageHubAccess(signal?: AbortSignal) {
  const base: HubOptions = { endpoint: hubStore.getState().endpoint, token, cache: await hubCache(), signal };
  return {
    openRepoFile: (repo: string, revision: string | undefined, path: string, opts: HubOptions = {}) => openRepoFile(repo, revision, path, { ...base, ...opts }),
    openRepoModel: (repo: string, revision: string | undefined, opts: RepoModelOptions = {}) => openRepoModel(repo, revision, { ...base, ...opts }),
    listRepoFiles: (repo: string, revision: string | undefined, opts: HubOptions = {}) => listRepoFiles(repo, revision ?? 'main', { ...base, ...opts }),
    resolveRevision: (repo: string, revision: string | undefined, opts: HubOptions = {}) => resolveRevision(repo, revision, { ...base, ...opts }),
  };
}
