/// <reference types="vitest/config" />
import { existsSync, mkdirSync } from 'node:fs';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

// Dawn (Node) must see the SwiftShader Vulkan driver in the real process environment before it starts;
// setting it in vitest's per-test env is too late for worker pools. Real GPUs need none of this.
const swiftshaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && existsSync(swiftshaderIcd)) process.env.VK_ICD_FILENAMES = swiftshaderIcd;
if (!process.env.XDG_RUNTIME_DIR) {
  const dir = '/tmp/merge-playground-xdg';
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

// index.html's Content-Security-Policy forbids inline styles, which the dev server injects (CSS with HMR): it serves the
// page without the policy; builds keep it (tests/e2e/csp.test.ts).
const cspOnlyInBuild: Plugin = {
  name: 'csp-only-in-build',
  apply: 'serve',
  transformIndexHtml: (html) => html.replace(/\s*<meta\s+http-equiv="Content-Security-Policy"[^>]*>/i, ''),
};

export default defineConfig({
  plugins: [react(), cspOnlyInBuild],
  // The first load is one chunk of about 1.25 MB (0.37 MB gzipped): recharts, React, the engine and its WGSL sources,
  // all needed by the first screen. What only some users reach loads when first used, in chunks of its own: the Hub
  // client (src/platform/hub.ts), the Hub suites' parquet reader and tokenizer (src/app/suiteActions.ts) and mergekit
  // YAML (src/app/shareActions.ts). The limit sits above the first chunk to keep builds quiet.
  build: { outDir: 'dist', sourcemap: true, target: 'es2022', chunkSizeWarningLimit: 2048 },
  worker: { format: 'es' },
  server: { fs: { allow: ['.'] } },
  test: {
    // Two cores in CI: GPU work on SwiftShader is CPU-bound, so keep parallelism modest.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], environment: 'node' } },
      {
        extends: true,
        test: { name: 'gpu', include: ['tests/gpu/**/*.test.ts'], environment: 'node', globalSetup: ['tests/gpu/globalSetup.ts'], testTimeout: 120_000, hookTimeout: 120_000 },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['tests/e2e/globalSetup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      // The benchmark's own tests: its harness, a smoke run of the suite (Dawn) and the PyTorch baselines (python3-torch).
      {
        extends: true,
        test: {
          name: 'bench',
          include: ['bench/tests/**/*.test.ts'],
          environment: 'node',
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
