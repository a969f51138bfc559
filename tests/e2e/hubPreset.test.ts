/**
 * A FusionBench preset in the page (headless Chromium), against the local fake Hub serving a tiny world under the
 * preset's real repo ids (tests/helpers/presetWorld.ts): the endpoint is set in the Hub panel, the preset is picked in
 * the suite picker, and the accuracy chart fills with every task and a merged average. The share link then pins
 * every model repo and every test set to the commit read, and opening it in a fresh browser context (no cache, default
 * endpoint) reads those commits, never `main`, and shows the same accuracies. A screenshot goes to tests/.out.
 *
 * The page may only connect where its Content-Security-Policy allows: its requests to https://mirror.hf.co (set in
 * the panel) and to https://huggingface.co (the default endpoint, which a reopened link uses) go to the fake Hub.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hubPreset } from '../../src/engine/eval/fusionbench/presets';
import { launchBrowser } from '../helpers/browser';
import { startFakeHub, type FakeHub } from '../helpers/fakeHub';
import { presetWorld } from '../helpers/presetWorld';

const PRESET = hubPreset('fusionbench-clip-vit-base-patch32-ta8');
const MIRROR = 'https://mirror.hf.co';
const out = join(process.cwd(), 'tests', '.out');
let browser: Browser;
let hub: FakeHub;

beforeAll(async () => {
  browser = await launchBrowser();
  hub = await startFakeHub((await presetWorld(PRESET)).repos);
  mkdirSync(out, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await hub?.close();
});

/** A page in a fresh context (its own cache) whose requests to either Hub endpoint are answered by the fake Hub. */
async function hubPage(hash = ''): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  for (const endpoint of [MIRROR, 'https://huggingface.co']) {
    await page.route(`${endpoint}/**`, async (route) => {
      const req = route.request();
      const url = new URL(req.url());
      try {
        const response = await route.fetch({ url: `${hub.url}${url.pathname}${url.search}`, headers: req.headers() });
        await route.fulfill({ response });
      } catch {
        await route.abort('connectionreset');
      }
    });
  }
  await page.goto(`${inject('baseUrl')}${hash}`);
  await page.getByTestId('gpu-ready').waitFor({ timeout: 60_000 });
  return { context, page, errors };
}

/** What the page shows now: the suite picked, the averages line, whether a merge's results are up and none runs. */
const pageState = (page: Page) =>
  page.evaluate(() => {
    const q = (id: string) => document.querySelector(`[data-testid="${id}"]`);
    const averages = q('accuracy-averages')?.textContent ?? '';
    const settled = !!q('results')?.getAttribute('data-merged-for') && !q('merge-progress') && /merged \d+\.\d %/.test(averages) && !averages.includes('—');
    return { suite: (q('suite-select') as HTMLSelectElement | null)?.value ?? null, settled, averages, error: document.querySelector('[data-testid=accuracy-chart] .error')?.textContent ?? null };
  });

/** Waits until the preset's suite is scored and merged; returns the averages line and the bars' geometry (values). */
async function presetResults(page: Page): Promise<{ averages: string; bars: string[] }> {
  await expect.poll(() => pageState(page), { timeout: 300_000, interval: 500 }).toMatchObject({ suite: PRESET.id, settled: true, error: null });
  const averages = page.getByTestId('accuracy-averages');
  const chart = page.getByTestId('accuracy-chart');
  // The x axis names every task (the y axis's ticks are percentages).
  const ticks = await chart.locator('.recharts-cartesian-axis-tick-value').allTextContents();
  expect(ticks.filter((t) => !t.endsWith('%'))).toEqual(PRESET.tasks.map((t) => t.title));
  // Bars of base, fine-tuned and merged per task: x says which, the height is the accuracy (a zero draws no bar).
  const bars = await chart.locator('.recharts-bar-rectangle path').evaluateAll((els) => els.map((e) => `${e.getAttribute('x')},${e.getAttribute('y')},${e.getAttribute('height')}`));
  return { averages: (await averages.textContent())!, bars };
}

const modelRepos = PRESET.tasks.map((t) => `${PRESET.modelPrefix}${t.id}`);

describe('a FusionBench preset from the Hub in the page', () => {
  it('loads from the suite picker, and its link reopens at the pinned commits with the same accuracies', async () => {
    const first = await hubPage();
    await first.page.locator('[data-testid=hub-panel] summary').click();
    await first.page.getByTestId('hub-endpoint').fill(MIRROR);
    await first.page.getByTestId('hub-endpoint').blur();
    await first.page.getByTestId('suite-select').selectOption(PRESET.id);
    const shown = await presetResults(first.page);
    expect(shown.bars.length).toBeGreaterThan(0);
    await first.page.screenshot({ path: join(out, 'hub-preset.png'), fullPage: true });

    // The link pins the base and every fine-tuned model to the commit read (the fake Hub's `main`).
    const pinned = (repo: string) => `${repo}@${hub.commit(repo, 'main')}`;
    await expect.poll(() => first.page.evaluate(() => location.hash), { timeout: 10_000 }).toContain('models=');
    const hash = await first.page.evaluate(() => location.hash);
    const params = new URLSearchParams(hash.slice(1));
    expect(params.get('base')).toBe(pinned(PRESET.base.repo));
    expect(params.get('models')!.split(',')).toEqual(modelRepos.map(pinned));
    // ... and every test set to the commit its images were read at.
    const dataPin = (t: (typeof PRESET.tasks)[number]) => `${t.dataset.repo}@${hub.commit(t.dataset.repo.slice('datasets/'.length), t.dataset.revision)}`;
    expect(params.get('data')!.split(',')).toEqual(PRESET.tasks.map(dataPin));
    expect(first.errors).toEqual([]);
    await first.context.close();

    // Reopened in a fresh context: the preset loads by itself, at those commits.
    hub.log.length = 0;
    const second = await hubPage(hash);
    const again = await presetResults(second.page);
    expect(again).toEqual(shown);
    const asked = hub.log.map((r) => r.path);
    for (const repo of [PRESET.base.repo, ...modelRepos]) {
      expect(asked.filter((p) => p.startsWith(`/api/models/${repo}/revision/`)), repo).toEqual([]);
      expect(asked, repo).toContain(`/api/models/${repo}/tree/${hub.commit(repo, 'main')}`);
    }
    for (const t of PRESET.tasks) {
      const repo = t.dataset.repo.slice('datasets/'.length);
      expect(asked.filter((p) => p.startsWith(`/api/datasets/${repo}/revision/`)), repo).toEqual([]);
      expect(asked, repo).toContain(`/api/datasets/${repo}/tree/${hub.commit(repo, t.dataset.revision)}`);
    }
    expect(second.errors).toEqual([]);
    await second.context.close();
  }, 600_000);
});
