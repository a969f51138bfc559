/**
 * The page opens on the embedded demo suite with no set-up: it scores the base and the fine-tuned models, merges with
 * the default method on the GPU and shows per-task accuracy; moving lambda re-merges and re-scores.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { launchBrowser } from '../helpers/browser';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

const mergedAverage = (text: string | null) => /merged (\d+\.\d) %/.exec(text ?? '')?.[1] ?? null;

it('opens on the demo suite, shows accuracy, and updates it when lambda changes', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(inject('baseUrl'));
  const averages = page.getByTestId('accuracy-averages');
  await expect.poll(async () => mergedAverage(await averages.textContent()), { timeout: 170_000, interval: 500 }).not.toBeNull();
  const first = await averages.textContent();
  expect(first).toMatch(/base \d+\.\d %/);
  expect(first).toMatch(/individual \d+\.\d %/);
  // Individual models beat the base on average (the suite is built that way).
  const [, base, individual] = /base (\d+\.\d) %.*individual (\d+\.\d) %/.exec(first!)!;
  expect(Number(individual)).toBeGreaterThan(Number(base) + 10);
  expect(await page.locator('[data-testid=accuracy-chart] .recharts-bar-rectangle').count()).toBeGreaterThanOrEqual(24);
  mkdirSync(join(process.cwd(), 'tests', '.out'), { recursive: true });
  await page.screenshot({ path: join(process.cwd(), 'tests', '.out', 'demo-default.png'), fullPage: true });
  await page.getByLabel('lambda value').fill('1.2');
  await expect.poll(async () => mergedAverage(await averages.textContent()), { timeout: 170_000, interval: 500 }).not.toBe(mergedAverage(first));
  expect(errors).toEqual([]);
  await page.close();
});
