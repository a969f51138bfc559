/**
 * End to end in headless Chromium (real WebGPU on SwiftShader): open the built page, pick a base and two fine-tuned
 * models, merge, see the chart, download the merged file and check it against an independent float64 computation.
 */
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchBrowser } from '../helpers/browser';
import { linearMergeOracle, maxUlpError, readFloatTensors, readMetadata } from '../helpers/independent';
import { makeModelBytes, makeRelatedModels } from '../helpers/safetensorsFixtures';
import { maxRelativeError } from '../helpers/gridModels';
import { mergeReference } from '../../src/engine/reference/mergeReference';
import type { RefModel } from '../../src/engine/reference/refModel';
import { resolveParams } from '../../src/engine/methods/params';
import { getMethod } from '../../src/engine/methods/registry';

const out = join(process.cwd(), 'tests', '.out');
let browser: Browser;
let dir: string;

function writeModels(dtype: 'F32' | 'BF16', seed: number) {
  const { base, finetuned } = makeRelatedModels({
    seed,
    dtype,
    models: 2,
    shapes: {
      'encoder.layers.0.mlp.fc1.weight': [64, 32],
      'encoder.layers.0.mlp.fc1.bias': [64],
      'encoder.layers.1.mlp.fc1.weight': [64, 32],
      'embeddings.patch_embedding.weight': [8, 3, 4, 4],
      'post_layernorm.weight': [32],
    },
  });
  const files = [makeModelBytes(base), ...finetuned.map((m) => makeModelBytes(m))];
  const names = [`base-${dtype}.safetensors`, `task-a-${dtype}.safetensors`, `task-b-${dtype}.safetensors`];
  names.forEach((n, i) => writeFileSync(join(dir, n), files[i]!));
  return { files, paths: names.map((n) => join(dir, n)) };
}

async function openPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(inject('baseUrl'));
  await page.getByTestId('gpu-ready').waitFor({ timeout: 60_000 });
  expect(errors).toEqual([]);
  return page;
}

beforeAll(async () => {
  browser = await launchBrowser();
  dir = mkdtempSync(join(tmpdir(), 'mp-e2e-'));
  mkdirSync(out, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
});

describe('merge page', () => {
  it('merges two models with task arithmetic, charts norms and downloads the file', async () => {
    const { files, paths } = writeModels('F32', 11);
    const page = await openPage();
    await page.getByTestId('base-input').setInputFiles(paths[0]!);
    await page.getByTestId('models-input').setInputFiles([paths[1]!, paths[2]!]);
    await page.getByLabel('lambda value').fill('0.4');
    await page.getByTestId('merge-button').click();
    const link = page.getByTestId('download-link');
    await link.waitFor({ timeout: 60_000 });
    // The chart has one line per fine-tuned model plus the merged one.
    await expect.poll(() => page.locator('[data-testid=norms-chart] .recharts-line').count()).toBe(3);
    await page.screenshot({ path: join(out, 'page-after-merge.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const saved = join(dir, 'downloaded.safetensors');
    await download.saveAs(saved);
    const merged = new Uint8Array(readFileSync(saved));
    const want = linearMergeOracle(files[0]!, files.slice(1), [0.4, 0.4]);
    const got = readFloatTensors(merged);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, w] of want) expect(maxUlpError(got.get(name)!.values, w, 'F32', 4), name).toBeLessThanOrEqual(1);
    const meta = readMetadata(merged)!;
    expect(JSON.parse(meta['merge_playground.config']!)).toMatchObject({ method: 'task_arithmetic', params: { lambda: 0.4 } });
    await page.close();
  });

  it('keeps bf16 and merges with simple average', async () => {
    const { files, paths } = writeModels('BF16', 12);
    const page = await openPage();
    await page.getByTestId('base-input').setInputFiles(paths[0]!);
    await page.getByTestId('models-input').setInputFiles([paths[1]!, paths[2]!]);
    await page.getByTestId('method-select').selectOption('simple_average');
    await page.getByTestId('merge-button').click();
    const link = page.getByTestId('download-link');
    await link.waitFor({ timeout: 60_000 });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const saved = join(dir, 'downloaded-bf16.safetensors');
    await download.saveAs(saved);
    const got = readFloatTensors(new Uint8Array(readFileSync(saved)));
    const want = linearMergeOracle(files[0]!, files.slice(1), [0.5, 0.5]);
    for (const [name, w] of want) {
      expect(got.get(name)!.dtype).toBe('BF16');
      expect(maxUlpError(got.get(name)!.values, w, 'BF16', 4), name).toBeLessThanOrEqual(1);
    }
    await page.close();
  });

  it('merges with TIES chosen in the method picker, equal to the CPU reference', async () => {
    const { files, paths } = writeModels('F32', 14);
    const page = await openPage();
    await page.getByTestId('base-input').setInputFiles(paths[0]!);
    await page.getByTestId('models-input').setInputFiles([paths[1]!, paths[2]!]);
    await page.getByTestId('method-select').selectOption('ties');
    await page.getByLabel('k value').fill('0.5');
    await page.getByLabel('merge', { exact: true }).selectOption('mean');
    await page.getByTestId('merge-button').click();
    const link = page.getByTestId('download-link');
    await link.waitFor({ timeout: 60_000 });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const saved = join(dir, 'downloaded-ties.safetensors');
    await download.saveAs(saved);
    const toRef = (bytes: Uint8Array): RefModel => new Map([...readFloatTensors(bytes)].map(([k, v]) => [k, { shape: v.shape, data: v.values }]));
    const want = mergeReference('ties', resolveParams(getMethod('ties'), { k: 0.5, merge: 'mean' }), toRef(files[0]!), files.slice(1).map(toRef));
    const got = readFloatTensors(new Uint8Array(readFileSync(saved)));
    for (const [name, w] of want) expect(maxRelativeError(got.get(name)!.values, w.data), name).toBeLessThanOrEqual(1e-5);
    await page.close();
  });

  it('shows a clear error for a truncated file and stays usable', async () => {
    const { files } = writeModels('F32', 13);
    const bad = join(dir, 'truncated.safetensors');
    writeFileSync(bad, files[0]!.subarray(0, files[0]!.byteLength - 100));
    const page = await openPage();
    await page.getByTestId('base-input').setInputFiles(bad);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('truncated.safetensors');
    await expect(page.getByTestId('merge-button').isDisabled()).resolves.toBe(true);
    await page.close();
  });

  it('tells the user when the browser has no WebGPU', async () => {
    const plain = await launchBrowser({ webgpu: false });
    try {
      const page = await plain.newPage();
      await page.goto(inject('baseUrl'));
      await page.getByTestId('gpu-unavailable').waitFor({ timeout: 30_000 });
      expect(await page.getByTestId('gpu-unavailable').textContent()).toMatch(/WebGPU/);
    } finally {
      await plain.close();
    }
  });
});
