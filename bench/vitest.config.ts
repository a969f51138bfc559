import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The benchmark's own tests (bench/tests), apart from the app's projects: `npx vitest run --config bench/vitest.config.ts`.
// suite.test.ts runs the engine on Dawn (SwiftShader without a GPU) and bench/torch_merge.py under python3-torch.
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['bench/tests/**/*.test.ts'],
    environment: 'node',
    testTimeout: 300_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
