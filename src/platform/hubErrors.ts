/**
 * Errors of Hub access. Every message names the repo (and file) at fault and is passed through `redact`, so an access
 * token can never reach an error message, a log line or a report, whatever a server echoes back.
 */

/** Why a Hub request failed, for callers that react differently (ask for a token, stop retrying). */
export type HubErrorKind = 'unauthorized' | 'forbidden' | 'not-found' | 'no-safetensors' | 'changed' | 'http' | 'network' | 'bad-response';

/** A failed Hub request; `message` is safe to show and log. */
export class HubError extends Error {
  override name = 'HubError';
  constructor(
    readonly kind: HubErrorKind,
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

// Hub user access tokens: "hf_" then letters and digits. Redacted even when they are not the token in use.
const TOKEN_PATTERN = /hf_[A-Za-z0-9]{8,}/g;

/** Text with `token` (and anything shaped like a Hub token) replaced by `***`. */
export function redact(text: string, token?: string | null): string {
  let out = text;
  if (token) out = out.split(token).join('***');
  return out.replace(TOKEN_PATTERN, '***').replace(/(Bearer\s+)\S+/gi, '$1***');
}

/** The same error with its message redacted (HubError keeps its kind); non-errors become Errors. */
export function redactError(e: unknown, token?: string | null): Error {
  if (!(e instanceof Error)) return new Error(redact(String(e), token));
  const clean = redact(e.message, token);
  if (clean === e.message && !(e.stack ?? '').includes('hf_') && !(token && (e.stack ?? '').includes(token))) return e;
  if (e instanceof HubError) return new HubError(e.kind, clean, e.status);
  const copy = new Error(clean);
  copy.name = e.name;
  return copy;
}

/** The error for an HTTP failure status on `what` (a repo, or `repo@rev: path`). */
export function statusError(status: number, what: string, repo: string): HubError {
  if (status === 401) {
    return new HubError('unauthorized', `${what}: access denied (HTTP 401): ${repo} is gated or private, or does not exist; give an access token that can read it`, status);
  }
  if (status === 403) {
    return new HubError('forbidden', `${what}: the access token given cannot read ${repo} (HTTP 403): accept its conditions on the Hub or use another token`, status);
  }
  if (status === 404) return new HubError('not-found', `${what}: not found on the Hub (HTTP 404)`, status);
  return new HubError('http', `${what}: HTTP ${status}`, status);
}

/** Whether a status is worth retrying: server errors, rate limits and timeouts. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}
