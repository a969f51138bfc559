/**
 * Content-Security-Policy of the built page, in headless Chromium: the policy is there and strict (own scripts only, no
 * inline script, no eval), the browser enforces it, and a whole session (load, pick models, merge, chart, download)
 * runs without a single violation.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createServer } from 'vite';
import { afterAll, beforeAll, describe, expect, inject } from 'vitest';
import { launchBrowser } from '../helpers/browser';
import { reliabilityCase } from '../helpers/reliability';
import { makeModelBytes, makeRelatedModels } from '../helpers/safetensorsFixtures';

let browser: Browser;

/** A page that records every CSP violation (console reports and securitypolicyviolation events). */
async function watchedPage(url = inject('baseUrl')): Promise<{ page: Page; violations: string[] }> {
  const page = await browser.newPage({ acceptDownloads: true });
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  await page.exposeFunction('__reportCspViolation', (v: string) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      void (window as unknown as { __reportCspViolation(v: string): void }).__reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  await page.goto(url);
  await page.getByTestId('gpu-ready').waitFor({ timeout: 60_000 });
  return { page, violations };
}

/** The page's policy as directive -> sources. */
async function policyOf(page: Page): Promise<Map<string, string[]>> {
  const content = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(content).toBeTruthy();
  return new Map(
    content!
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('Content-Security-Policy', () => {
  reliabilityCase('csp', 'the built page carries a strict policy: own scripts only, no inline script, no eval', async () => {
    const { page } = await watchedPage();
    const policy = await policyOf(page);
    expect(policy.get('default-src')).toEqual(["'self'"]);
    expect(policy.get('script-src')).toEqual(["'self'"]);
    expect(policy.get('object-src')).toEqual(["'none'"]);
    expect(policy.get('base-uri')).toEqual(["'self'"]);
    expect(policy.get('worker-src')).toEqual(["'self'", 'blob:']);
    expect(policy.get('img-src')).toEqual(["'self'", 'blob:', 'data:']);
    expect(policy.get('connect-src')).toEqual(["'self'", 'https://huggingface.co', 'https://*.hf.co']);
    for (const [name, sources] of policy) if (name !== 'style-src' && name !== 'style-src-attr') expect(sources.join(' '), name).not.toMatch(/unsafe/);
    // The built page has no inline script for the policy to allow.
    expect(await page.locator('script:not([src])').count()).toBe(0);
    await page.close();
    return policy.size;
  });

  reliabilityCase('csp', 'the browser enforces it: eval, inline scripts and foreign connections are blocked', async () => {
    const { page, violations } = await watchedPage();
    const outcome = await page.evaluate(async () => {
      const results: Record<string, string> = {};
      // From a timer: code evaluated by the test driver itself is exempt from the page's eval rule.
      results.eval = await new Promise<string>((resolve) =>
        setTimeout(() => {
          try {
            resolve(String(new Function('return "ran"')()));
          } catch (e) {
            resolve((e as Error).name);
          }
        }),
      );
      const script = document.createElement('script');
      script.textContent = 'window.__inlineRan = true';
      document.head.appendChild(script);
      results.inline = String((window as unknown as { __inlineRan?: boolean }).__inlineRan === true);
      try {
        await fetch('https://example.com/');
        results.fetch = 'allowed';
      } catch (e) {
        results.fetch = (e as Error).name;
      }
      return results;
    });
    expect(outcome).toEqual({ eval: 'EvalError', inline: 'false', fetch: 'TypeError' });
    await expect.poll(() => violations.length).toBeGreaterThanOrEqual(3);
    await page.close();
    return 3;
  });

  reliabilityCase('csp', 'a whole session (load, pick models, merge, chart, download) runs without a CSP violation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-csp-'));
    const { base, finetuned } = makeRelatedModels({ seed: 3, dtype: 'F32', models: 2, shapes: { 'encoder.layers.0.mlp.fc1.weight': [16, 8], 'encoder.layers.1.mlp.fc1.weight': [16, 8] } });
    const paths = [base, ...finetuned].map((m, i) => {
      const p = join(dir, `${i === 0 ? 'base' : `task-${i}`}.safetensors`);
      writeFileSync(p, makeModelBytes(m));
      return p;
    });
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, makeModelBytes(base).subarray(0, 100));
    const { page, violations } = await watchedPage();
    // The error path renders too: an alert naming the bad file.
    await page.getByTestId('base-input').setInputFiles(truncated);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('truncated.safetensors');
    await page.getByTestId('base-input').setInputFiles(paths[0]!);
    await page.getByTestId('models-input').setInputFiles(paths.slice(1));
    await page.getByTestId('merge-button').click();
    const link = page.getByTestId('download-link');
    await link.waitFor({ timeout: 60_000 });
    await expect.poll(() => page.locator('[data-testid=norms-chart] .recharts-line').count()).toBe(3);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    expect(await download.failure()).toBeNull();
    expect(violations).toEqual([]);
    await page.close();
  });

  reliabilityCase('csp', 'the dev server (npm start) serves a working, styled page: the policy is only in the build', async () => {
    const server = await createServer({ configFile: 'vite.config.ts', logLevel: 'silent', server: { host: '127.0.0.1', port: 0, strictPort: false } });
    await server.listen();
    try {
      const { page, violations } = await watchedPage(server.resolvedUrls!.local[0]!);
      // styles.css sets body { margin: 0 }: the dev server's injected <style> applied.
      expect(await page.evaluate(() => getComputedStyle(document.body).margin)).toBe('0px');
      expect(violations).toEqual([]);
      await page.close();
    } finally {
      await server.close();
    }
  });
});
