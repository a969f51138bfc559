/**
 * HTTP for the Hub with the failures of real networks handled: requests retried with exponential backoff on network
 * errors, timeouts and 5xx/429 answers (bounded, cancellable); range reads that resume from the last byte received
 * when a connection drops mid-body; and an ETag check on every read, so bytes of two versions of a file are never mixed.
 * The access token travels only in the Authorization header given here; error text is redacted by the caller.
 */
import type { ByteSource } from '../engine/io/byteSource';
import { CancelledError, throwIfAborted } from '../engine/errors';
import { HubError, isRetryableStatus, statusError } from './hubErrors';

/** How hard to try. Delays double from `baseDelayMs` up to `maxDelayMs`; `timeoutMs` bounds each wait for data. */
export interface RetryPolicy {
  /** Tries per request (and per stretch of a download without progress) before giving up. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest wait for response headers, or between two chunks of a body. */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 500, maxDelayMs: 10_000, timeoutMs: 30_000 };

/** What every request of a session shares. */
export interface Transport {
  fetch: typeof fetch;
  /** Authorization, when a token is in use. */
  headers: Record<string, string>;
  retry: RetryPolicy;
  signal?: AbortSignal;
  /** Called for each retry, with why (already free of secrets: it names only the file and the failure). */
  onRetry?: (what: string, attempt: number, why: string) => void;
}

/** Waits `ms`, or rejects with CancelledError as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function backoff(policy: RetryPolicy, failures: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - 1));
}

function combine(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const list = signals.filter((s): s is AbortSignal => !!s);
  return list.length <= 1 ? list[0] : AbortSignal.any(list);
}

/** A network failure worth retrying (not a cancellation). */
class TransientError extends Error {}

/**
 * One request whose headers must arrive within the timeout. The returned `watch` keeps the timer for the body:
 * `watch.touch()` after each chunk; `watch.done()` when finished.
 */
async function attempt(t: Transport, url: string, init: RequestInit, signal?: AbortSignal): Promise<{ res: Response; watch: { touch(): void; done(): void; signal: AbortSignal } }> {
  const timeout = new AbortController();
  let timer = setTimeout(() => timeout.abort(), t.retry.timeoutMs);
  const watch = {
    signal: timeout.signal,
    touch() {
      clearTimeout(timer);
      timer = setTimeout(() => timeout.abort(), t.retry.timeoutMs);
    },
    done() {
      clearTimeout(timer);
    },
  };
  const user = combine(t.signal, signal);
  try {
    const res = await t.fetch(url, { ...init, headers: { ...t.headers, ...(init.headers as Record<string, string>) }, signal: combine(user, timeout.signal) });
    return { res, watch };
  } catch (e) {
    watch.done();
    if (user?.aborted) throw new CancelledError();
    if (timeout.signal.aborted) throw new TransientError(`no answer within ${t.retry.timeoutMs} ms`);
    throw new TransientError((e as Error).message || 'network error');
  }
}

/**
 * fetch with retries: network errors, timeouts and retryable statuses are tried again after a growing delay. Returns
 * the final response, which may be a non-retryable error status (the caller maps it) or the last retryable one.
 */
export async function fetchWithRetry(t: Transport, url: string, init: RequestInit, what: string, signal?: AbortSignal): Promise<Response> {
  for (let failures = 1; ; failures++) {
    let why: string;
    try {
      const { res, watch } = await attempt(t, url, init, signal);
      watch.done();
      if (!isRetryableStatus(res.status) || failures >= t.retry.attempts) return res;
      await discard(res);
      why = `HTTP ${res.status}`;
    } catch (e) {
      if (!(e instanceof TransientError)) throw e;
      if (failures >= t.retry.attempts) throw new HubError('network', `${what}: ${e.message} (gave up after ${failures} tries)`);
      why = e.message;
    }
    t.onRetry?.(what, failures, why);
    await sleep(backoff(t.retry, failures), combine(t.signal, signal));
  }
}

/** A `fetch` for @huggingface/hub calls: same retries, same cancellation. */
export function retryingFetch(t: Transport, what: string): typeof fetch {
  return (input, init) => fetchWithRetry({ ...t, headers: {} }, String(input instanceof Request ? input.url : input), init ?? {}, what);
}

/** Drops a body we do not want. */
export async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // Already consumed or errored.
  }
}

/** An ETag without the weak prefix and quotes; null when absent. */
function etagOf(res: Response): string | null {
  const raw = res.headers.get('etag');
  return raw ? raw.replace(/^W\//, '').replace(/^"|"$/g, '') : null;
}

/** A remote file opened for range reads. */
export interface RemoteFile {
  source: ByteSource;
  /** The ETag seen when the file was opened; every later read must see the same. */
  etag: string | null;
  /** X-Repo-Commit of the resolve answer, when the server sends it. */
  commit: string | null;
}

/**
 * Opens `url` for range reads. `name` is what errors and the ByteSource call it (never the URL: it could carry
 * query parameters); `repo` is named in access errors; `onBytes` counts bytes received from the network.
 */
export async function openRemoteFile(t: Transport, url: string, name: string, repo: string, onBytes?: (n: number) => void): Promise<RemoteFile> {
  const probe = await fetchWithRetry(t, url, { headers: { Range: 'bytes=0-0' } }, name);
  await discard(probe);
  let size: number | null = null;
  if (probe.status === 206 || probe.status === 416) {
    const total = /\/(\d+)\s*$/.exec(probe.headers.get('content-range') ?? '')?.[1];
    if (total !== undefined) size = Number(total);
  } else if (probe.ok) {
    throw new HubError('bad-response', `${name}: the server ignored the Range request (HTTP ${probe.status}): it cannot serve partial reads`, probe.status);
  } else {
    throw statusError(probe.status, name, repo);
  }
  // A cross-origin server may not expose Content-Range to the page; Content-Length of a HEAD always is.
  size ??= await headSize(t, probe.url || url, name, repo);
  const etag = etagOf(probe);
  const fileSize = size;

  const read = async (offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> => {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > fileSize) {
      throw new RangeError(`${name}: read of ${length} bytes at ${offset} is outside the file (${fileSize} bytes)`);
    }
    const out = new Uint8Array(length);
    let got = 0;
    // Failures since the last byte received: a long download over a flaky link goes on as long as it progresses.
    let failures = 0;
    const user = combine(t.signal, signal);
    const retryAfter = async (why: string) => {
      failures++;
      if (failures >= t.retry.attempts) throw new HubError('network', `${name}: ${why} (gave up after ${failures} tries, ${got} of ${length} bytes at ${offset} received)`);
      t.onRetry?.(name, failures, why);
      await sleep(backoff(t.retry, failures), user);
    };
    while (got < length) {
      throwIfAborted(user);
      const start = offset + got;
      let res: Response;
      let watch: Awaited<ReturnType<typeof attempt>>['watch'];
      try {
        ({ res, watch } = await attempt(t, url, { headers: { Range: `bytes=${start}-${offset + length - 1}` } }, signal));
      } catch (e) {
        if (!(e instanceof TransientError)) throw e;
        await retryAfter(e.message);
        continue;
      }
      if (res.status !== 206) {
        watch.done();
        await discard(res);
        if (isRetryableStatus(res.status)) {
          await retryAfter(`HTTP ${res.status}`);
          continue;
        }
        if (res.ok) throw new HubError('bad-response', `${name}: the server ignored the Range request (HTTP ${res.status})`, res.status);
        throw statusError(res.status, name, repo);
      }
      const seen = etagOf(res);
      if (etag !== null && seen !== etag) {
        watch.done();
        await discard(res);
        throw new HubError('changed', `${name}: the file changed on the server while it was being read (ETag ${etag}, now ${seen ?? 'none'}); open the model again`);
      }
      // Checked where the server exposes it; a body longer than asked is caught while reading.
      const rangeStart = /^bytes\s+(\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (rangeStart !== undefined && Number(rangeStart) !== start) {
        watch.done();
        await discard(res);
        throw new HubError('bad-response', `${name}: asked for bytes from ${start}, the server answered with ${res.headers.get('content-range') ?? 'no Content-Range'}`);
      }
      const before = got;
      const fill = { at: got };
      try {
        await readBody(res, out, fill, watch, name, onBytes);
        got = fill.at;
      } catch (e) {
        got = fill.at;
        if (user?.aborted) throw new CancelledError();
        if (e instanceof HubError) throw e;
        if (got > before) failures = 0;
        await retryAfter(watch.signal.aborted ? `no data for ${t.retry.timeoutMs} ms` : `connection dropped (${(e as Error).message || 'network error'})`);
        continue;
      } finally {
        watch.done();
      }
      if (got > before) failures = 0;
      if (got < length) await retryAfter(`the connection ended after ${got} of ${length} bytes`);
    }
    return out;
  };
  return { source: { name, size: fileSize, read }, etag, commit: probe.headers.get('x-repo-commit') };
}

/** File size from the Content-Length of a HEAD request. */
async function headSize(t: Transport, url: string, name: string, repo: string): Promise<number> {
  const head = await fetchWithRetry(t, url, { method: 'HEAD' }, name);
  await discard(head);
  if (!head.ok) throw statusError(head.status, name, repo);
  const length = head.headers.get('content-length');
  if (length === null || !/^\d+$/.test(length.trim())) throw new HubError('bad-response', `${name}: the server reports no file size (no Content-Range or Content-Length)`);
  return Number(length);
}

/**
 * Copies a response body into `out` from `fill.at`, as it arrives, advancing `fill.at`; a body longer than the room
 * left is a server error. On a dropped connection it throws with `fill.at` at the last byte kept: the caller resumes.
 */
async function readBody(res: Response, out: Uint8Array, fill: { at: number }, watch: { touch(): void; signal: AbortSignal }, name: string, onBytes?: (n: number) => void): Promise<void> {
  if (!res.body) throw new TransientError('empty response');
  const reader = res.body.getReader();
  const onTimeout = () => void reader.cancel().catch(() => undefined);
  watch.signal.addEventListener('abort', onTimeout, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (watch.signal.aborted) throw new TransientError('timeout');
      watch.touch();
      if (fill.at + value.byteLength > out.byteLength) {
        throw new HubError('bad-response', `${name}: the server sent more bytes than the range asked for`);
      }
      out.set(value, fill.at);
      fill.at += value.byteLength;
      onBytes?.(value.byteLength);
    }
    if (watch.signal.aborted) throw new TransientError('timeout');
  } finally {
    watch.signal.removeEventListener('abort', onTimeout);
    reader.releaseLock();
  }
}
