/**
 * Slider-to-chart latency on the demo suite: in headless Chromium (real WebGPU: the machine's GPU, or SwiftShader),
 * on the accuracy tab and on the interference tab (whose merges measure the interference metrics) with Task
 * Arithmetic, and on the accuracy tab with global TIES (whose statistics the page keeps from the first merge), set lambda through
 * its number box and time, inside the page, from the input event to the commit of the results
 * for that lambda (the results element's data-merged-for names the config its numbers belong to). Includes the
 * page's 150 ms coalescing delay, the merge, the evaluation of the live sample and React's render.
 * Writes bench/results/<date>-<adapter>-slider.json and .md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { launchBrowser } from '../../tests/helpers/browser';
import { adapterSlug } from '../output';

const UPDATES = Number(process.env.SLIDER_UPDATES ?? 12);

/** Runs in the page: sets lambda and resolves with the milliseconds until the chart shows that lambda's merge. */
function oneUpdate(value: number): Promise<number> {
  const input = document.querySelector<HTMLInputElement>('input[aria-label="lambda value"]')!;
  const results = document.querySelector<HTMLElement>('[data-testid=results]')!;
  const shows = () => {
    try {
      const key = JSON.parse(results.dataset.mergedFor ?? 'null') as [string, Record<string, unknown>] | null;
      return key?.[1]?.lambda === value;
    } catch {
      return false;
    }
  };
  return new Promise((resolve) => {
    const t0 = performance.now();
    const observer = new MutationObserver(() => {
      if (!shows()) return;
      observer.disconnect();
      resolve(performance.now() - t0);
    });
    observer.observe(results, { attributes: true, attributeFilter: ['data-merged-for'] });
    const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
    setValue.call(input, String(value));
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * The views measured: Task Arithmetic on the accuracy tab (merges without interference metrics) and on the
 * interference tab (with them), and global TIES on both (lambda leaves its thresholds, majority sign and the metrics
 * of its contributions as they are).
 */
const VIEWS = [
  { tab: 'accuracy', method: 'task_arithmetic', hash: '', what: 'Accuracy tab (the merge without interference metrics)' },
  { tab: 'interference', method: 'task_arithmetic', hash: '#v=1&view.tab=interference', what: 'Interference tab (the merge with interference metrics, the task vectors\' known after the first)' },
  { tab: 'accuracy', method: 'ties', hash: '#v=1&method=ties', what: 'Accuracy tab, global TIES (its thresholds and majority sign kept from the first merge)' },
  { tab: 'interference', method: 'ties', hash: '#v=1&method=ties&view.tab=interference', what: 'Interference tab, global TIES (its statistics and its contributions\' metrics kept from the first merge)' },
] as const;

it('measures slider-to-chart latency on the demo suite', async () => {
  const browser = await launchBrowser();
  try {
    let adapter = '';
    let samples = 0;
    const views: { tab: string; method: string; what: string; medianMs: number; minMs: number; maxMs: number; timesMs: number[] }[] = [];
    for (const view of VIEWS) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`${inject('baseUrl')}${view.hash}`);
      adapter = (await page.getByTestId('gpu-ready').textContent({ timeout: 60_000 }))!.replace(/^GPU:\s*/, '').replace(/\s*\(software renderer[^)]*\)$/, '');
      await expect.poll(() => page.getByTestId('results').getAttribute('data-merged-for'), { timeout: 600_000, interval: 500 }).toBeTruthy();
      samples = Number(await page.getByTestId('results').getAttribute('data-merged-samples'));
      const times: number[] = [];
      // lambda 0.30 is the default: visit 0.31, 0.32, ... so every update is a new merge.
      for (let i = 1; i <= UPDATES; i++) times.push(await page.evaluate(oneUpdate, Math.round((0.3 + i / 100) * 100) / 100));
      views.push({ tab: view.tab, method: view.method, what: view.what, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), timesMs: times });
      await page.close();
    }
    const date = new Date().toISOString();
    const accuracy = views[0]!;
    const result = {
      // @3: each view names its method (@2: Task Arithmetic only).
      format: 'merge-playground/slider-latency@3',
      date,
      adapter,
      updates: UPDATES,
      samplesPerTask: samples,
      // The accuracy tab's figures at the top level, as in format @1.
      medianMs: accuracy.medianMs,
      minMs: accuracy.minMs,
      maxMs: accuracy.maxMs,
      timesMs: accuracy.timesMs,
      views,
    };
    const dir = join(process.cwd(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const stem = join(dir, `${date.slice(0, 10)}-${adapterSlug(adapter)}-slider`);
    writeFileSync(`${stem}.json`, `${JSON.stringify(result, null, 1)}\n`);
    const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    writeFileSync(
      `${stem}.md`,
      [
        `# Slider-to-chart latency: ${adapter}, ${date.slice(0, 10)}`,
        '',
        `Demo suite in headless Chromium, lambda set ${UPDATES} times through its number box on each view; each time measured inside the page from the input event to the commit of the results for that lambda (150 ms coalescing delay + merge of 8 models + evaluation of ${samples} images per task on 8 tasks + render).`,
        '',
        '| view | method | median | min | max | updates |',
        '|---|---|---:|---:|---:|---:|',
        ...views.map((v) => `| ${v.what} | ${v.method} | **${seconds(v.medianMs)}** | ${seconds(v.minMs)} | ${seconds(v.maxMs)} | ${UPDATES} |`),
        '',
      ].join('\n'),
    );
    console.log(`slider-to-chart latency: ${views.map((v) => `${v.method} on ${v.tab} median ${v.medianMs.toFixed(0)} ms`).join(', ')} over ${UPDATES} updates (${adapter}); written to ${stem}.md`);
    for (const v of views) expect(v.timesMs).toHaveLength(UPDATES);
  } finally {
    await browser.close();
  }
});
