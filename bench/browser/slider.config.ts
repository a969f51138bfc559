import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The browser benchmark (`npm run bench:slider`): builds and serves the page as the end-to-end tests do, then measures
// slider-to-chart latency in headless Chromium. A benchmark, not a test: it records figures and asserts no timing.
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['bench/browser/sliderLatency.run.ts'],
    environment: 'node',
    globalSetup: ['tests/e2e/globalSetup.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 300_000,
  },
});
