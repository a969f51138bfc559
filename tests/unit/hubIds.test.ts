/** Hub repo ids as typed by users: accepted forms, and a clear error naming the id for every rejected one. */
import { describe, expect, it } from 'vitest';
import { formatHubId, isCommitHash, looksLikeHubId, parseHubId } from '../../src/platform/hubIds';
import { redact, redactError, HubError } from '../../src/platform/hubErrors';

describe('parseHubId', () => {
  it('parses org/name with and without a revision', () => {
    expect(parseHubId('tanganke/clip-vit-base-patch32_sun397')).toEqual({ type: 'model', name: 'tanganke/clip-vit-base-patch32_sun397', revision: 'main' });
    expect(parseHubId('openai/clip-vit-base-patch32@v1.0')).toEqual({ type: 'model', name: 'openai/clip-vit-base-patch32', revision: 'v1.0' });
    expect(parseHubId('org/name@refs/pr/12').revision).toBe('refs/pr/12');
    const sha = '0123456789abcdef0123456789abcdef01234567';
    expect(parseHubId(`org/name@${sha}`).revision).toBe(sha);
    expect(parseHubId('datasets/tanganke/sun397')).toEqual({ type: 'dataset', name: 'tanganke/sun397', revision: 'main' });
    expect(parseHubId('  org/name  ').name).toBe('org/name');
  });

  it.each([
    ['', 'empty'],
    ['name-only', 'organization or user is missing'],
    ['a/b/c', 'more than one'],
    ['org/-bad', 'does not allow'],
    ['org/bad..name', 'does not allow'],
    ['org/name with space', 'does not allow'],
    ['org/<script>', 'does not allow'],
    ['org/name@', 'revision'],
    ['org/name@../../etc', 'revision'],
    ['org/name@main branch', 'revision'],
    ['org/name@a?token=x', 'revision'],
    ['models/org/name', 'prefix'],
    ['https://huggingface.co/org/name', 'not a Hub repo id'],
  ])('rejects %j (%s)', (id, why) => {
    expect(() => parseHubId(id)).toThrow(why);
    if (id) expect(() => parseHubId(id)).toThrow(JSON.stringify(id.trim()).slice(0, 10));
    expect(looksLikeHubId(id)).toBe(false);
  });

  it('formats ids back, leaving out main', () => {
    for (const id of ['org/name', 'org/name@v2', 'datasets/org/data@refs/pr/1']) expect(formatHubId(parseHubId(id))).toBe(id);
    expect(isCommitHash('0123456789abcdef0123456789abcdef01234567')).toBe(true);
    expect(isCommitHash('main')).toBe(false);
  });
});

describe('redact', () => {
  it('removes the token, anything shaped like a Hub token, and bearer credentials', () => {
    const token = 'hf_AbCdEf0123456789';
    expect(redact(`GET failed with Authorization: Bearer ${token}`, token)).not.toContain(token);
    expect(redact('echo hf_SomeOtherToken99 back')).toBe('echo *** back');
    const e = redactError(new HubError('http', `x ${token}`, 500), token);
    expect(e).toBeInstanceOf(HubError);
    expect(e.message).toBe('x ***');
    expect((e as HubError).status).toBe(500);
  });
});
