/**
 * Hub models in the page (headless Chromium), against the local fake Hub: the HubPanel adds a base (vision tower only)
 * and two fine-tuned models (a tag-pinned revision and a sharded model whose first download is cut mid-body and resumes
 * by range) from a configured endpoint, with progress;
 * a gated repo fails without a token and opens with one; the merged file downloads; a reload opens the same model from
 * the browser cache with no second download; corrupt cache entries are fetched again; cancel stops an open. The token never reaches storage, the URL or the page.
 *
 * The page may only connect where its Content-Security-Policy allows (huggingface.co, *.hf.co): the endpoint used here,
 * https://mirror.hf.co, is allowed, and the browser's requests to it are routed to the local fake Hub.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchBrowser } from '../helpers/browser';
import { standardRepos, startFakeHub, type FakeHub } from '../helpers/fakeHub';

const ENDPOINT = 'https://mirror.hf.co';
const fixtures = standardRepos(5);
let browser: Browser;
let hub: FakeHub;
/**
 * Byte responses to cut short on their way to the page: the first half of the body is delivered under the full
 * Content-Length, so the browser's read fails mid-body (a dropped connection) and the client must resume from there.
 */
const cuts: { repo: string; left: number }[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
  hub = await startFakeHub(fixtures.repos);
});
afterAll(async () => {
  await browser?.close();
  await hub?.close();
});

/** A page whose requests to the endpoint are answered by the fake Hub; the context keeps its cache across reloads. */
async function hubPage(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.route(`${ENDPOINT}/**`, async (route) => {
    const req = route.request();
    const url = new URL(req.url());
    try {
      const response = await route.fetch({ url: `${hub.url}${url.pathname}${url.search}`, headers: req.headers() });
      const cut = cuts.find((c) => c.left > 0 && url.pathname.includes(`/${c.repo}/resolve/`) && (response.status() === 200 || response.status() === 206));
      const body = cut ? await response.body() : null;
      if (cut && body && body.byteLength > 1) {
        cut.left--;
        await route.fulfill({ status: response.status(), headers: response.headers(), body: body.subarray(0, body.byteLength >> 1) });
        return;
      }
      await route.fulfill({ response });
    } catch {
      await route.abort('connectionreset');
    }
  });
  await page.goto(inject('baseUrl'));
  await page.getByTestId('gpu-ready').waitFor({ timeout: 60_000 });
  await page.locator('[data-testid=hub-panel] summary').click();
  await page.getByTestId('hub-endpoint').fill(ENDPOINT);
  await page.getByTestId('hub-endpoint').blur();
  await page.getByTestId('hub-prefix').fill('vision_model.');
  return { page, errors };
}

/** Types an id, clicks add, and waits for the job to end; returns its final state. */
async function add(page: Page, id: string, role: 'base' | 'model'): Promise<string> {
  await page.getByTestId('hub-id').fill(id);
  await page.getByTestId(role === 'base' ? 'hub-add-base' : 'hub-add-model').click();
  const job = page.getByTestId('hub-job').filter({ hasText: id }).last();
  await expect.poll(() => job.getAttribute('data-state'), { timeout: 120_000 }).not.toBe('opening');
  return (await job.getAttribute('data-state'))!;
}

describe('Hub models in the page', () => {
  it('adds a base and fine-tuned models from the Hub, handles a gated repo, merges, and reloads from the cache', async () => {
    const { page, errors } = await hubPage();
    expect(await add(page, 'test-org/clip-base', 'base')).toBe('done');
    expect(await add(page, 'test-org/task-a@v1', 'model')).toBe('done');
    // The sharded model's first file response is cut mid-body: the client asks again for the rest, by range.
    cuts.push({ repo: 'test-org/task-b', left: 1 });
    const before = hub.log.length;
    expect(await add(page, 'test-org/task-b', 'model')).toBe('done');
    expect(cuts[0]!.left).toBe(0);
    const reads = hub.log.slice(before).filter((r) => r.path.includes('/test-org/task-b/resolve/') && r.range);
    const starts = reads.map((r) => Number(/bytes=(\d+)-/.exec(r.range!)![1]));
    // A request that starts inside the range of the one before it: the resumed rest of the cut response.
    expect(starts.some((s, i) => i > 0 && s > starts[i - 1]! && reads[i - 1]!.range!.endsWith(`-${/-(\d+)$/.exec(reads[i]!.range!)![1]}`))).toBe(true);
    const models = page.getByTestId('model-row');
    await expect.poll(() => models.count()).toBe(2);
    expect(await models.nth(0).textContent()).toContain(`test-org/task-a@v1 (${hub.commit('test-org/task-a', 'v1').slice(0, 7)})`);
    // Vision tower only: the base row counts the vision tensors.
    const visionTensors = fixtures.base.filter((t) => t.name.startsWith('vision_model.')).length;
    expect(await page.locator('.model-row').first().textContent()).toContain(`${visionTensors} tensors`);

    expect(await add(page, 'test-org/gated-task', 'model')).toBe('error');
    expect(await page.getByTestId('hub-job').filter({ hasText: 'test-org/gated-task' }).last().textContent()).toMatch(/gated or private/);
    await page.getByTestId('hub-token').fill(fixtures.token);
    await page.getByTestId('hub-token-save').click();
    expect(await add(page, 'test-org/gated-task', 'model')).toBe('done');
    await expect.poll(() => models.count()).toBe(3);

    await page.getByTestId('merge-button').click();
    await page.getByTestId('download-link').waitFor({ timeout: 120_000 });

    // The token is in no storage, URL or text of the page (it was not remembered for the tab).
    const exposed = await page.evaluate((t) => [location.href, document.documentElement.outerHTML, JSON.stringify({ ...sessionStorage }), JSON.stringify({ ...localStorage })].some((s) => s.includes(t)), fixtures.token);
    expect(exposed).toBe(false);
    expect(hub.log.every((r) => !r.url.includes(fixtures.token))).toBe(true);

    // Reload: the same model comes from the browser cache, with no file bytes downloaded.
    await page.reload();
    await page.getByTestId('gpu-ready').waitFor({ timeout: 60_000 });
    await page.locator('[data-testid=hub-panel] summary').click();
    await page.getByTestId('hub-endpoint').fill(ENDPOINT);
    await page.getByTestId('hub-endpoint').blur();
    await page.getByTestId('hub-prefix').fill('vision_model.');
    hub.log.length = 0;
    expect(await add(page, 'test-org/task-b', 'model')).toBe('done');
    expect(hub.fileRequests()).toEqual([]);

    // Corrupt every cached entry (same checksum header, one byte flipped): each is detected, deleted and fetched again.
    const corrupted = await page.evaluate(async () => {
      let n = 0;
      for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        for (const req of await cache.keys()) {
          const res = (await cache.match(req))!;
          const bytes = new Uint8Array(await res.arrayBuffer());
          if (bytes.byteLength < 64) continue;
          bytes[10] = bytes[10]! ^ 0xff;
          await cache.put(req, new Response(bytes, { headers: res.headers }));
          n++;
        }
      }
      return n;
    });
    expect(corrupted).toBeGreaterThan(0);
    hub.log.length = 0;
    expect(await add(page, 'test-org/task-b', 'model')).toBe('done');
    expect(hub.fileRequests().length).toBeGreaterThan(0);
    hub.log.length = 0;
    expect(await add(page, 'test-org/task-b', 'model')).toBe('done');
    expect(hub.fileRequests()).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
    // The page scores the demo suite at start on a CPU-emulated GPU while this runs: allow for a loaded machine.
  }, 400_000);

  it('shows bytes, rate and time left while downloading, and cancel stops the open', async () => {
    const { page } = await hubPage();
    // Every block of task-a's main revision answers slowly: the progress bar is visible, then cancelled.
    hub.faults.push({ kind: 'delay', ms: 1500, times: 50, match: (p, range) => p.startsWith('/lfs/') && p.includes('task-a') && range !== 'bytes=0-0' });
    await page.getByTestId('hub-id').fill('test-org/task-a');
    await page.getByTestId('hub-add-model').click();
    const progress = page.getByTestId('hub-progress');
    await expect.poll(() => progress.textContent(), { timeout: 30_000 }).toMatch(/ of /);
    await page.getByTestId('hub-cancel').click();
    const job = page.getByTestId('hub-job').filter({ hasText: 'test-org/task-a' }).last();
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 10_000 }).toBe('cancelled');
    hub.faults.length = 0;
    await page.close();
  });
});
