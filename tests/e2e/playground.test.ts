/**
 * The playground end to end in headless Chromium (real WebGPU on SwiftShader): every chart of the default page gets
 * data, moving a slider updates the link and the charts, the link reproduces the numbers after a reload, hostile links
 * fall back to the defaults with a plain-text error, and exports download valid files. Screenshots of the default,
 * interference, continual and OPCM views go to tests/.out (the committed ones under docs/screenshots come from here).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { launchBrowser } from '../helpers/browser';

const out = join(process.cwd(), 'tests', '.out');
let browser: Browser;

/** Two models, 8 images per task: the page's own options, chosen so the slow views finish quickly on SwiftShader. */
const LIGHT = '#v=1&live=8&settled=8&models=demo:fashion-noise,demo:digits-dim,!demo:tops-lowres,!demo:fashion-dim,!demo:fashion-clutter,!demo:groups-occluded,!demo:digits-clutter,!demo:digits-impulse';

const mergedAverage = (text: string | null) => /merged (\d+\.\d) %/.exec(text ?? '')?.[1] ?? null;

async function open(hash = '', opts: { dialogs?: string[] } = {}): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => {
    opts.dialogs?.push(d.message());
    void d.dismiss();
  });
  await page.goto(`${inject('baseUrl')}${hash}`);
  return { page, errors };
}

/**
 * Takes the view's screenshot after checking that nothing widens the page past the viewport (a horizontal scroll bar
 * on a desktop window means some element escaped the layout).
 */
async function shoot(page: Page, name: string, fullPage = true): Promise<void> {
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  expect(widths.scroll, `${name}: page width`).toBeLessThanOrEqual(widths.client);
  await page.screenshot({ path: join(out, name), fullPage });
}

/** Waits until the results belong to a merge (of `lambda`, when given) and returns the averages line. */
async function settledAverages(page: Page, lambda?: number): Promise<string> {
  const results = page.getByTestId('results');
  await expect
    .poll(
      async () => {
        const key = await results.getAttribute('data-merged-for');
        if (!key) return false;
        return lambda === undefined || (JSON.parse(key) as [string, Record<string, unknown>])[1].lambda === lambda;
      },
      { timeout: 240_000, interval: 500 },
    )
    .toBe(true);
  await expect.poll(() => page.getByTestId('merge-progress').count(), { timeout: 240_000, interval: 500 }).toBe(0);
  // A change that does not touch the merged-for key (reordering models) marks the results stale before its merge starts.
  await expect.poll(async () => (await page.getByTestId('accuracy-averages').textContent()) ?? '', { timeout: 240_000, interval: 500 }).not.toContain('updating for the new settings');
  const text = await page.getByTestId('accuracy-averages').textContent();
  expect(mergedAverage(text)).not.toBeNull();
  return text!;
}

beforeAll(async () => {
  browser = await launchBrowser();
  mkdirSync(out, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
});

describe('the playground', () => {
  it('opens on the demo and fills the accuracy and interference views', async () => {
    const { page, errors } = await open();
    const averages = await settledAverages(page);
    expect(averages).toMatch(/base \d+\.\d %/);
    // Individual models beat the base on average (the suite is built that way).
    const [, base, individual] = /base (\d+\.\d) %.*individual (\d+\.\d) %/.exec(averages)!;
    expect(Number(individual)).toBeGreaterThan(Number(base) + 10);
    expect(await page.locator('[data-testid=accuracy-chart] .recharts-bar-rectangle').count()).toBeGreaterThanOrEqual(24);
    expect(page.url()).toContain('#v=1');
    await shoot(page, 'playground-default.png', false);

    await page.getByTestId('tab-interference').click();
    await page.getByTestId('cosine-heatmap').waitFor({ timeout: 300_000 });
    expect(await page.locator('[data-testid=cosine-heatmap] svg rect').count()).toBeGreaterThanOrEqual(64);
    expect(await page.locator('[data-testid=sign-conflict-chart] .recharts-bar-rectangle').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid=layer-norms-chart] .recharts-line-curve').count()).toBeGreaterThanOrEqual(9);
    await page.getByTestId('mask-overlap-chart').waitFor();
    expect(page.url()).toContain('view.tab=interference');
    await shoot(page, 'playground-interference.png');
    // The sign chart's other measure: mean sign agreement, per layer, on the same axis range.
    const signs = page.getByTestId('sign-conflict-chart');
    await signs.getByLabel('mean sign agreement instead').check();
    await expect.poll(() => signs.textContent()).toContain('Sign agreement per layer');
    expect(await signs.textContent()).toContain('mean sign agreement (%)');
    expect(await signs.locator('.recharts-bar-rectangle').count()).toBeGreaterThan(0);

    expect(errors).toEqual([]);
    await page.close();
  }, 900_000);

  it('sweeps lambda, runs the continual comparison over seeded orders and shows OPCM internals', async () => {
    const { page, errors } = await open(LIGHT);
    await settledAverages(page);
    expect(await page.getByTestId('model-toggle').evaluateAll((els) => els.filter((e) => (e as HTMLInputElement).checked).length)).toBe(2);
    await page.getByTestId('tab-sweep').click();
    await expect.poll(() => page.locator('[data-testid=sweep-chart] .recharts-line-dot').count(), { timeout: 300_000, interval: 1000 }).toBeGreaterThanOrEqual(9);
    // Another parameter, from a link: TIES's k over (0, 1]; choosing lambda goes into the link.
    const { page: kPage, errors: kErrors } = await open(`${LIGHT}&method=ties&view.tab=sweep&view.sweep=k`);
    await expect.poll(() => kPage.locator('[data-testid=sweep-chart] .recharts-line-dot').count(), { timeout: 300_000, interval: 1000 }).toBeGreaterThanOrEqual(9);
    expect(await kPage.getByTestId('sweep-param').inputValue()).toBe('k');
    expect(await kPage.getByTestId('sweep-chart').textContent()).toContain('Accuracy vs k');
    expect(await kPage.getByTestId('sweep-status').textContent()).toMatch(/^9 values · best so far: k = 0\.\d+ gives \d+\.\d %$/);
    await kPage.getByTestId('sweep-param').selectOption('lambda');
    await expect.poll(() => kPage.url()).toContain('view.sweep=lambda');
    await expect.poll(() => kPage.getByTestId('sweep-chart').textContent(), { timeout: 300_000, interval: 1000 }).toContain('Accuracy vs lambda');
    expect(kErrors).toEqual([]);
    await kPage.close();
    await page.getByTestId('tab-continual').click();
    await page.getByTestId('run-continual').click();
    await expect.poll(() => page.locator('[data-testid=continual-table] tbody tr').count(), { timeout: 400_000, interval: 1000 }).toBe(5);
    await expect.poll(() => page.getByTestId('job-progress').count(), { timeout: 400_000, interval: 1000 }).toBe(0);
    const cells = await page.locator('[data-testid=continual-table] tbody td').allTextContents();
    expect(cells).toHaveLength(15);
    for (const c of cells) expect(c).toMatch(/^\d+\.\d \/ -?\d+\.\d$/);
    await page.getByTestId('continual-accuracy-chart').waitFor();
    await shoot(page, 'playground-continual.png');

    await page.getByTestId('tab-opcm').click();
    await page.getByTestId('switch-to-opcm').click();
    await page.getByTestId('opcm-internals-chart').waitFor({ timeout: 300_000 });
    await page.getByTestId('continual-chart').waitFor();
    expect(page.url()).toContain('method=opcm');
    await shoot(page, 'playground-opcm.png');
    expect(errors).toEqual([]);
    await page.close();
  }, 900_000);

  it('writes slider moves into the link and reproduces the numbers from it', async () => {
    const { page, errors } = await open(LIGHT);
    const first = await settledAverages(page);
    await page.getByLabel('lambda value').fill('0.8');
    const moved = await settledAverages(page, 0.8);
    expect(mergedAverage(moved)).not.toBe(mergedAverage(first));
    await expect.poll(() => page.url()).toContain('lambda=0.8');
    // Reorder and toggle: both are part of the experiment.
    await page.getByRole('button', { name: /move Digits, low contrast up/i }).click();
    await expect.poll(() => page.url()).toMatch(/models=demo:digits-dim,demo:fashion-noise/);
    const link = page.url();
    const shown = await settledAverages(page, 0.8);
    const again = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await again.goto(link);
    expect(await settledAverages(again, 0.8)).toBe(shown);
    expect(await again.getByLabel('lambda value').inputValue()).toBe('0.8');
    // An edit of the address that changes a setting shown as text (a per-layer lambda) shows the new setting, not
    // the text typed or loaded before.
    for (const list of ['0.1,0.2', '0.5,0.6']) {
      await again.evaluate((h) => void (location.hash = h), new URL(link).hash.replace('lambda=0.8', `lambda=${list}`));
      await expect.poll(() => again.locator('#param-lambda').inputValue()).toBe(`[${list}]`);
    }
    // A typed setting the engine refuses (a rule without its value) stays in the box with the reason and is not sent;
    // once it is one, it is.
    const box = again.locator('#param-lambda');
    await box.fill('[{"filter": "mlp"}]');
    await expect.poll(() => again.locator('.param-error').textContent()).toMatch(/params\.lambda\[0\]\.value: missing/);
    expect(decodeURIComponent(again.url())).toContain('lambda=0.5,0.6');
    await box.fill('[{"filter": "mlp", "value": 0.5}, {"value": 0.3}]');
    await expect.poll(() => decodeURIComponent(again.url())).toMatch(/lambda=\[\{"value":0\.5,"filter":"mlp"\},\{"value":0\.3\}\]/);
    expect(await again.locator('.param-error').count()).toBe(0);
    expect(await box.inputValue()).toBe('[{"filter": "mlp", "value": 0.5}, {"value": 0.3}]');
    expect(errors).toEqual([]);
    await again.close();
    await page.close();
  }, 600_000);

  it('falls back to the defaults on a hostile or broken link and shows the problem as text', async () => {
    const dialogs: string[] = [];
    const cases = [
      '#v=1&method=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E',
      '#v=1&models=demo:%3Cscript%3Ealert(1)%3C%2Fscript%3E',
      '#v=1&hf_token=hf_abcdefghijklmnopqrstuvwxyz0123',
      '#v=9&method=ties',
      `#v=1&method=ties&k=${'9'.repeat(1 << 20)}`,
    ];
    for (const hash of cases) {
      const { page, errors } = await open(hash, { dialogs });
      const banner = page.getByTestId('link-error');
      await banner.waitFor({ timeout: 60_000 });
      const text = (await banner.textContent())!;
      expect(text).toMatch(/could not be read|defaults/);
      expect(text).not.toContain('hf_abcdefghijklmnopqrstuvwxyz0123');
      expect(await page.locator('[data-testid=link-error] img, [data-testid=link-error] script, img[src=x]').count()).toBe(0);
      expect(await page.getByTestId('method-select').inputValue()).toBe('task_arithmetic');
      expect(errors).toEqual([]);
      await page.close();
    }
    expect(dialogs).toEqual([]);
  });

  it('exports the experiment as JSON and mergekit YAML, and the merged model as safetensors', async () => {
    const { page, errors } = await open(`${LIGHT}&lambda=0.5`);
    await settledAverages(page, 0.5);
    const grab = async (button: string, link: string) => {
      await page.getByTestId(button).click();
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId(link).click()]);
      return readFileSync((await download.path())!);
    };
    const json = JSON.parse((await grab('export-json', 'export-link')).toString('utf8')) as Record<string, unknown>;
    expect(json.format).toBe('merge-playground/experiment@1');
    expect(json.params).toEqual({ lambda: 0.5 });
    const yaml = parseYaml((await grab('export-yaml', 'export-link')).toString('utf8')) as Record<string, unknown>;
    expect(yaml.merge_method).toBe('task_arithmetic');
    await page.getByTestId('merge-button').click();
    await page.getByTestId('download-link').waitFor({ timeout: 240_000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-link').click()]);
    const merged = readFileSync((await download.path())!);
    const headerLength = Number(merged.readBigUInt64LE(0));
    const { __metadata__: meta, ...tensors } = JSON.parse(merged.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { data_offsets: [number, number] }> & { __metadata__?: Record<string, string> };
    expect(Object.keys(tensors).length).toBeGreaterThan(50);
    expect(Math.max(...Object.values(tensors).map((t) => t.data_offsets[1]))).toBe(merged.length - 8 - headerLength);
    expect(JSON.parse(meta!['merge_playground.config']!)).toMatchObject({ method: 'task_arithmetic', params: { lambda: 0.5 } });
    expect(errors).toEqual([]);
    await page.close();
  }, 600_000);
});
