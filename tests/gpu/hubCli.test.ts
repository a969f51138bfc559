/**
 * `merge-playground merge` with Hub ids, against the local fake Hub: the merge of Hub models (a tag-pinned revision, a
 * sharded model, a gated one with HF_TOKEN, only the vision tower of the base) is byte-identical to the same merge
 * from local files; a second run reads everything from the cache; the token never reaches the output or the report.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli';
import { standardRepos, startFakeHub, type FakeHub, cliHubEnv } from '../helpers/fakeHub';
import { makeModelBytes } from '../helpers/safetensorsFixtures';

const fixtures = standardRepos(11);
let hub: FakeHub;
let dir: string;
let restoreEnv: () => void = () => {};

beforeAll(async () => {
  hub = await startFakeHub(fixtures.repos);
  dir = mkdtempSync(join(tmpdir(), 'mp-hubcli-'));
  restoreEnv = cliHubEnv(hub.url, join(dir, 'cache'));
});
afterAll(async () => {
  restoreEnv();
  await hub.close();
});

/** A safetensors file's tensor entries, metadata and data area. */
function readSafetensors(path: string): { tensors: Record<string, unknown>; metadata: Record<string, string>; data: Buffer } {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const { __metadata__: metadata, ...tensors } = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  return { tensors, metadata, data: bytes.subarray(8 + n) };
}

const MERGE = ['--method', 'task_arithmetic', '--set', 'lambda=0.3', '--prefix', 'vision_model.'];

describe('merge-playground merge with Hub ids', () => {
  it('equals the same merge from local files, pins commits in the report, and reuses the cache', async () => {
    const local = { base: join(dir, 'base.safetensors'), a: join(dir, 'a.safetensors'), b: join(dir, 'b.safetensors'), g: join(dir, 'g.safetensors') };
    writeFileSync(local.base, makeModelBytes(fixtures.base));
    writeFileSync(local.a, makeModelBytes(fixtures.taskAv1));
    writeFileSync(local.b, makeModelBytes(fixtures.taskB));
    writeFileSync(local.g, makeModelBytes(fixtures.gated));
    const localOut = join(dir, 'local.safetensors');
    const l = await runCli(['merge', '--base', local.base, '--model', local.a, '--model', local.b, '--model', local.g, ...MERGE, '--out', localOut, '--quiet']);
    expect(l.stderr).toBe('');
    expect(l.code).toBe(0);

    const hubArgs = ['--base', 'test-org/clip-base', '--model', 'test-org/task-a@v1', '--model', 'test-org/task-b', '--model', 'test-org/gated-task', ...MERGE];
    const denied = await runCli(['merge', ...hubArgs, '--out', join(dir, 'denied.safetensors')]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/error: test-org\/gated-task@main: access denied \(HTTP 401\)/);

    process.env.HF_TOKEN = fixtures.token;
    const hubOut = join(dir, 'hub.safetensors');
    const report = join(dir, 'hub.json');
    const h = await runCli(['merge', ...hubArgs, '--out', hubOut, '--report', report]);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stderr).toMatch(/test-org\/task-b: 100% of/);
    const got = readSafetensors(hubOut);
    const want = readSafetensors(localOut);
    expect(got.data.equals(want.data)).toBe(true);
    expect(got.tensors).toEqual(want.tensors);
    expect(got.metadata['merge_playground.config']).toBe(want.metadata['merge_playground.config']);
    // The merged file names its sources pinned to commits.
    expect(got.metadata['merge_playground.base']).toBe(`test-org/clip-base@${hub.commit('test-org/clip-base', 'main')}`);
    const r = JSON.parse(readFileSync(report, 'utf8'));
    expect(r.sources.base).toMatchObject({ repo: 'test-org/clip-base', revision: 'main', commit: hub.commit('test-org/clip-base', 'main') });
    expect(r.sources.models[0]).toMatchObject({ repo: 'test-org/task-a', revision: 'v1', commit: hub.commit('test-org/task-a', 'v1') });
    for (const text of [h.stderr, h.stdout, readFileSync(report, 'utf8'), readFileSync(hubOut).toString('latin1')]) expect(text).not.toContain(fixtures.token);
    // Only the vision tower was downloaded: no range of the base file reached into the text tensors.
    const baseBytes = hub.fileRequests().filter((q) => q.path.includes('clip-base') && q.path.endsWith('.safetensors')).reduce((a, q) => a + q.bytes, 0);
    const textBytes = fixtures.base.filter((t) => t.name.startsWith('text_model.')).reduce((a, t) => a + t.data.byteLength, 0);
    expect(baseBytes).toBeLessThanOrEqual(makeModelBytes(fixtures.base).byteLength - textBytes + 1);

    hub.log.length = 0;
    const again = await runCli(['merge', ...hubArgs, '--out', join(dir, 'again.safetensors'), '--quiet']);
    expect(again.code, again.stderr).toBe(0);
    expect(hub.fileRequests()).toEqual([]);
    expect(hub.log.every((q) => q.path.includes('/revision/'))).toBe(true);
    expect(readSafetensors(join(dir, 'again.safetensors')).data.equals(want.data)).toBe(true);
  });

  it('says clearly when an argument is neither a file nor a Hub id, or the repo does not exist', async () => {
    const bad = await runCli(['merge', '--base', './no/such/file.safetensors', '--model', 'test-org/task-a', '--method', 'task_arithmetic', '--out', join(dir, 'x.safetensors')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no such file/);
    const typo = await runCli(['merge', '--base', 'models-dir/base.safetensors', '--model', 'test-org/task-a', '--method', 'task_arithmetic', '--out', join(dir, 'z.safetensors')]);
    expect(typo.stderr).toMatch(/models-dir\/base\.safetensors: no such file/);
    const missing = await runCli(['merge', '--base', 'test-org/nope', '--model', 'test-org/task-a', '--method', 'task_arithmetic', '--out', join(dir, 'y.safetensors')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/test-org\/nope@main: not found on the Hub \(HTTP 404\)/);
  });
});
