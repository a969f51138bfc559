/**
 * Hugging Face Hub repo ids as users type them: `org/name`, `org/name@revision`, and `datasets/org/name[@revision]`
 * for dataset repos. A revision is a branch, a tag, `refs/pr/N` or a commit hash; a 40-hex-digit revision is a pinned
 * commit and needs no lookup.
 */

/** A parsed repo id. */
export interface HubRepoId {
  type: 'model' | 'dataset';
  /** `org/name` (no type prefix). */
  name: string;
  /** As given, or `main` when the id has none. */
  revision: string;
}

// The Hub's own rules: letters, digits, '-', '_', '.'; no leading/trailing '-' or '.', no '--' or '..'; at most 96 chars.
const PART = /^(?![-.])(?!.*(--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;
const COMMIT = /^[0-9a-f]{40}$/;
// Branch and tag names as git allows them, minus what would break a URL path or a shell: no spaces, no '..', no '~^:?*[\'.
const REVISION = /^(?!\/)(?!.*(\.\.|\/\/|@\{))[A-Za-z0-9._\-/]{1,200}(?<![/.])$/;

/** True for a 40-hex-digit commit hash. */
export function isCommitHash(revision: string): boolean {
  return COMMIT.test(revision);
}

/** Parses `[datasets/]org/name[@revision]`; throws an Error saying what is wrong with the id. */
export function parseHubId(id: string): HubRepoId {
  const fail = (why: string): never => {
    throw new Error(`${JSON.stringify(id.length > 120 ? `${id.slice(0, 117)}...` : id)} is not a Hub repo id: ${why} (expected org/name or org/name@revision)`);
  };
  if (typeof id !== 'string' || id.trim() === '') return fail('it is empty');
  let rest = id.trim();
  let type: HubRepoId['type'] = 'model';
  if (rest.startsWith('datasets/')) {
    type = 'dataset';
    rest = rest.slice('datasets/'.length);
  } else if (/^(models?|spaces?|dataset)\//.test(rest)) {
    return fail(`a "${rest.split('/')[0]}/" prefix is not supported (only datasets/ for dataset repos)`);
  }
  const at = rest.indexOf('@');
  const path = at < 0 ? rest : rest.slice(0, at);
  const revision = at < 0 ? 'main' : rest.slice(at + 1);
  const parts = path.split('/');
  if (parts.length !== 2) return fail(parts.length < 2 ? 'the organization or user is missing' : 'it has more than one "/"');
  for (const p of parts) if (!PART.test(p)) fail(`${JSON.stringify(p)} has characters or a form the Hub does not allow`);
  if (at >= 0 && !REVISION.test(revision)) fail(`the revision ${JSON.stringify(revision)} is not a valid branch, tag or commit`);
  return { type, name: path, revision };
}

/** Whether a command-line argument looks like a Hub id (the CLI first checks that it is not an existing local path). */
export function looksLikeHubId(arg: string): boolean {
  try {
    parseHubId(arg);
    return true;
  } catch {
    return false;
  }
}

/** The id as text: `org/name@revision` (revision left out when it is main), with the datasets/ prefix if any. */
export function formatHubId(repo: HubRepoId): string {
  return `${repo.type === 'dataset' ? 'datasets/' : ''}${repo.name}${repo.revision === 'main' ? '' : `@${repo.revision}`}`;
}
